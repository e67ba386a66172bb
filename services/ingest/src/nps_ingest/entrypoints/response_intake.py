"""`POST /v1/responses`, the canonical API's one response, served by `HotRoutes` ahead of
FastAPI: the route `bench/pipeline.py` and most senders use.

It answers what FastAPI's route answers (the route stays declared, so `/docs` documents it),
in the same order: a body that is not JSON 400, a missing or wrong token 401, a body of
another media type 415, an invalid field 422 naming it, the broker away 503, else 202 with
the event's id. Served through FastAPI it cost ~90 µs of CPU more per request (in process,
`bench/ingest_hot.py --route canonical`): routing, the dependency, the response model."""

import email.message
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from nps_ingest.domain.auth import source_for_token
from nps_ingest.domain.sources import Source
from nps_ingest.domain.webhooks import InvalidResponseError
from nps_ingest.entrypoints.answers import accepted_of, invalid_response, unauthorized, unavailable
from nps_ingest.entrypoints.bodies import Accepted, ResponseIn
from nps_ingest.entrypoints.hot_routes import RawRequest, RawResponse
from nps_ingest.handlers import (
    BrokerUnavailableError,
    EventPublisher,
    receive_response,
    sources_by_token,
)
from nps_kit.clock import Clock
from nps_kit.http import Problem, field_message


def bearer_source(authorization: str | None, tokens: Mapping[str, Sequence[str]]) -> str:
    """The source whose bearer token `authorization` carries; a 401 `Problem` otherwise."""
    if not authorization:
        raise unauthorized("Send 'Authorization: Bearer <token>'.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Send 'Authorization: Bearer <token>'.")
    source = source_for_token(token.strip(), tokens)
    if source is None:
        raise unauthorized("The token is not valid.")
    return source


class ResponseIntake:
    """`POST /v1/responses`: one response in npsloop's own JSON, published once acknowledged."""

    def __init__(
        self,
        *,
        sources: Mapping[str, Source],
        publisher: EventPublisher,
        clock: Clock,
        publish_timeout: float,
        comment_limit: int,
    ) -> None:
        self.tokens = sources_by_token(sources)
        self.publisher = publisher
        self.clock = clock
        self.publish_timeout = publish_timeout
        self.comment_limit = comment_limit

    async def hot(self, request: RawRequest) -> RawResponse:
        content_type = request.headers.get("content-type")
        data = _json_body(request.body, content_type)
        source = bearer_source(request.headers.get("authorization"), self.tokens)
        body = _response_in(data, content_type)
        accepted = await self.answer(body, source)
        return RawResponse(202, accepted.model_dump_json(exclude_none=True).encode())

    async def answer(self, body: ResponseIn, source: str) -> Accepted:
        """Publish the validated `body` from `source`: the 202's body, or the problem (422
        for a response the domain refuses, 503 with the broker away). The hot route and
        FastAPI's declared one both answer with it."""
        try:
            received = await receive_response(
                body.to_domain(),
                source=source,
                publisher=self.publisher,
                clock=self.clock,
                ack_timeout=self.publish_timeout,
                comment_limit=self.comment_limit,
            )
        except InvalidResponseError as exc:
            raise invalid_response(exc) from exc
        except BrokerUnavailableError as exc:
            raise unavailable("Broker", exc, 5) from exc
        return accepted_of(received)


#: No body at all: FastAPI says the body is required.
_MISSING = object()


def _json_body(body: bytes, content_type: str | None) -> Any:
    """The body as FastAPI reads it: JSON when its media type is JSON, else the bytes (which
    then fail validation: 415 or 422); `_MISSING` when empty. Malformed JSON is a 400."""
    if not body:
        return _MISSING
    if content_type is None or not _is_json_media(content_type):
        return body
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise Problem(
            400, "Malformed JSON", f"The request body is not valid JSON: {exc.msg}".rstrip(": ")
        ) from None
    except UnicodeDecodeError:
        # Not JSON either; FastAPI answers this one with its generic 400.
        raise Problem(400, "HTTP error", "There was an error parsing the body") from None


def _is_json_media(content_type: str) -> bool:
    """FastAPI's test: `application/json` or `application/<anything>+json`."""
    if content_type == "application/json":  # nearly every request: no parsing
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _response_in(data: Any, content_type: str | None) -> ResponseIn:
    """The validated body, or the problem the app's validation handler answers with."""
    if data is _MISSING:
        errors: list[Any] = [{"type": "missing", "loc": (), "msg": "Field required"}]
    else:
        try:
            # As FastAPI validates a body (from_attributes: its words for a non-object body).
            return ResponseIn.model_validate(data, from_attributes=True)
        except ValidationError as exc:
            errors = list(exc.errors())
    if content_type is not None and not _is_json_problem_media(content_type):
        raise Problem(
            415,
            "Unsupported media type",
            f"The body must be application/json, not {content_type.split(';')[0].strip()}.",
            headers={"Accept": "application/json"},
        )
    fields = [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": field_message(err)}
        for err in errors
    ]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    raise Problem(422, "Invalid request", detail, errors=fields)


def _is_json_problem_media(content_type: str) -> bool:
    """The app's validation handler's test (nps_kit.http): a 415 for any other media type."""
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")
