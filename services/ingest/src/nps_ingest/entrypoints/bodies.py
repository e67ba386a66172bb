"""What ingest's API accepts and answers: the bodies, their limits, and the examples its
OpenAPI document shows."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nps_events import Customer, Line, OptOutScope, Text
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.webhooks import InvalidResponseError, parse_score

MAX_BATCH = 1000
MAX_CSV_ROWS = 5000
BACKFILL = (
    "true: the responses are history (a migration from another survey tool). They are scored "
    "and counted in the figures, and followup opens no case and contacts nobody for them."
)
CSV_COLUMNS = (
    "response_id",
    "survey_id",
    "customer_id",
    "customer_email",
    "customer_name",
    "score",
    "comment",
    "responded_at",
)

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

    response_id: Line = Field(
        min_length=1, max_length=200, description="Your id for the response; re-posting it is safe."
    )
    survey_id: Line = Field(min_length=1, max_length=200)
    customer: Customer
    score: int = Field(ge=0, le=10, strict=True, description="0–10.")
    comment: Text | None = Field(
        default=None,
        max_length=100_000,
        description="Free text; longer than the configured limit (10,000 characters by default) "
        "it is cut, and the answer says so with `comment_truncated`. It may span lines (tab "
        "and line breaks), but a NUL or another control character is refused (422).",
    )
    responded_at: datetime = Field(description="RFC 3339 with a time zone offset.")

    def to_domain(self) -> CanonicalResponse:
        if self.responded_at.tzinfo is None:
            raise InvalidResponseError("responded_at", "must include a time zone offset")
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
        description="The event's id; the same for a re-posted (replayed) response."
    )
    response_id: str | None = Field(
        default=None, description="npsloop's id of the response (none for an opt-out)."
    )
    type: str = Field(default="response", description="`response` or `opt_out`.")
    comment_truncated: bool = Field(
        default=False, description="The comment was longer than the limit and was cut."
    )


class WebhookItem(Accepted):
    """One event a webhook delivery published."""

    attributes_set_aside: list[str] = Field(
        default_factory=list,
        description="The survey tool's customer fields that could not become the customer's "
        "attributes, each with why (a value with a control character, over the limits, a "
        "phone without its country code…); the response was published without them. Names "
        "the fields, never their values.",
    )


class WebhookAccepted(BaseModel):
    accepted: list[WebhookItem] = Field(description="What was published, one per response.")
    ignored: str | None = Field(
        default=None, description="Why the delivery carried nothing for npsloop, if so."
    )
    warning: str | None = Field(
        default=None,
        description="Nothing was published because the event type is not declared for this "
        "source (Standard Webhooks with its own event names): declare it, or fix the sender.",
    )


class OptOutIn(BaseModel):
    """A customer's request not to be contacted, from your own product."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "opt_out_id": "unsub-2026-0042",
                    "customer_id": "cust-42",
                    "scope": "email",
                    "occurred_at": "2026-11-24T10:00:00Z",
                }
            ]
        },
    )

    opt_out_id: Line = Field(
        min_length=1, max_length=200, description="Your id for it; re-posting it is safe."
    )
    customer_id: Line = Field(min_length=1, max_length=200)
    scope: OptOutScope = Field(default=OptOutScope.ALL, description="email, sms or all.")
    occurred_at: datetime = Field(description="RFC 3339 with a time zone offset.")


class BatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"responses": [_EXAMPLE]}]}
    )

    responses: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"Up to {MAX_BATCH} responses, each in the shape of `POST /v1/responses`.",
    )


class ItemResult(BaseModel):
    index: int
    status: str = Field(description="`accepted`, `duplicate` (of an earlier item) or `error`.")
    event_id: str | None = None
    response_id: str | None = None
    comment_truncated: bool = False
    error: str | None = Field(default=None, description="What is wrong with this item.")
    line: int | None = Field(
        default=None,
        description="CSV import: the line the row starts on (the header is line 1).",
    )


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    errors: int
    results: list[ItemResult]


def csv_item(row: Mapping[str, str]) -> dict[str, Any]:
    def cell(name: str) -> str | None:
        value = row.get(name)
        return value.strip() or None if isinstance(value, str) else None

    who = {
        "id": cell("customer_id"),
        "email": cell("customer_email"),
        "name": cell("customer_name"),
    }
    score = cell("score")
    return {
        "response_id": cell("response_id"),
        "survey_id": cell("survey_id"),
        "customer": {k: v for k, v in who.items() if v is not None},
        # CSV has only strings: "8" is a score here, "nine" is not.
        "score": parse_score(score, "score") if score is not None else None,
        "comment": cell("comment"),
        "responded_at": cell("responded_at"),
    }


WEBHOOK_BODY = {
    "requestBody": {
        "required": True,
        "description": "The provider's payload, exactly as it sent it (the signature covers "
        "the raw bytes).",
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "examples": {
                    "standard-webhooks": {
                        "summary": "Standard Webhooks (with webhook-id, -timestamp, -signature)",
                        "value": {"type": "response.created", "data": _EXAMPLE},
                    },
                    "delighted": {
                        "summary": "Delighted (X-Delighted-Webhook-Signature)",
                        "value": {
                            "event_type": "survey_response.updated",
                            "event_id": "b8d057c5",
                            "event_data": {
                                "id": "5435",
                                "person": {"id": "5975", "email": "charlie@example.com"},
                                "survey_type": "nps",
                                "score": 9,
                                "comment": "Fast and flawless",
                                "created_at": 1732186844,
                            },
                        },
                    },
                },
            },
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object"},
                "example": "response[id]=1128&response[score]=7&response[external_id]=123abc",
            },
        },
    }
}
CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": ",".join(CSV_COLUMNS)
                + "\nr-1,relationship-2026,cust-42,ada@example.com,Ada,3,Too slow,"
                "2026-01-05T10:00:00Z\n",
            }
        },
    }
}
