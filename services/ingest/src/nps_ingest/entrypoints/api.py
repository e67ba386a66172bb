"""Ingest's HTTP API: translate the request, call one handler, map the result."""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, ConfigDict, Field

from nps_events import Customer
from nps_ingest.domain.auth import source_for_token
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.handlers import BrokerUnavailableError, EventPublisher, receive_response
from nps_kit.clock import Clock
from nps_kit.http import Problem

_EXAMPLE: dict[str, Any] = {
    "response_id": "r-1001",
    "survey_id": "onboarding-2026",
    "customer": {"id": "cust-42", "email": "ada@example.com", "name": "Ada Lovelace"},
    "score": 3,
    "comment": "Setup took far too long.",
    "responded_at": "2026-11-24T10:00:00Z",
}


class ResponseIn(BaseModel):
    """A survey response in npsloop's own JSON shape."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    response_id: str = Field(
        min_length=1, max_length=200, description="Your id for the response; re-posting it is safe."
    )
    survey_id: str = Field(min_length=1, max_length=200)
    customer: Customer
    score: int = Field(ge=0, le=10, strict=True, description="0–10.")
    comment: str | None = Field(default=None, max_length=10_000)
    responded_at: datetime = Field(description="RFC 3339 with a time zone offset.")

    def to_domain(self) -> CanonicalResponse:
        if self.responded_at.tzinfo is None:
            raise Problem(
                422,
                "Invalid request",
                "responded_at: must include a time zone offset",
                errors=[{"field": "responded_at", "message": "must include a time zone offset"}],
            )
        return CanonicalResponse(
            response_id=self.response_id,
            survey_id=self.survey_id,
            customer=self.customer,
            score=self.score,
            comment=self.comment,
            responded_at=self.responded_at,
        )


class Accepted(BaseModel):
    event_id: str = Field(
        description="The ResponseReceived event's id; the same for a re-posted response."
    )
    response_id: str = Field(description="npsloop's id of the response.")


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="npsloop-ingest"'}
    )


def router(
    *,
    tokens: Callable[[], Mapping[str, str]],
    publisher: EventPublisher,
    clock: Clock,
    publish_timeout: float,
) -> APIRouter:
    api = APIRouter()

    async def authenticated_source(authorization: Annotated[str | None, Header()] = None) -> str:
        if not authorization:
            raise _unauthorized("Send 'Authorization: Bearer <token>'.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("Send 'Authorization: Bearer <token>'.")
        source = source_for_token(token.strip(), tokens())
        if source is None:
            raise _unauthorized("The token is not valid.")
        return source

    @api.post(
        "/v1/responses",
        status_code=202,
        response_model=Accepted,
        summary="Receive one survey response",
        responses={
            401: {"description": "Missing or wrong bearer token (problem+json)."},
            422: {"description": "Invalid response; `errors` names each field (problem+json)."},
            503: {"description": "The broker is unavailable; retry after `Retry-After` seconds."},
        },
    )
    async def post_response(
        body: ResponseIn, source: Annotated[str, Depends(authenticated_source)]
    ) -> Accepted:
        """Answers 202 once the broker has acknowledged the `ResponseReceived` event.
        Posting the same `response_id` again is safe: it yields the same event id."""
        try:
            event = await receive_response(
                body.to_domain(),
                source=source,
                publisher=publisher,
                clock=clock,
                ack_timeout=publish_timeout,
            )
        except BrokerUnavailableError as exc:
            raise Problem(
                503,
                "Broker unavailable",
                f"The response was not accepted: {exc}. Retry later.",
                headers={"Retry-After": "5"},
            ) from exc
        return Accepted(event_id=str(event.event_id()), response_id=str(event.response_id))

    return api
