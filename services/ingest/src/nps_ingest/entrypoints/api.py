"""Ingest's HTTP API: translate the request, call one handler, map the result."""

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import ASGIApp

from nps_events import ContactOptOut, Customer, Line, OptOutScope, Text
from nps_ingest.adapters.csv_rows import CsvHeaderError, read_csv
from nps_ingest.domain.auth import source_for_token
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.signatures import SignatureError, StaleTimestampError
from nps_ingest.domain.sources import Proof, Provider, Source
from nps_ingest.domain.webhooks import (
    InvalidResponseError,
    MalformedPayloadError,
    OptOut,
    ProviderAdapter,
    VendorUnavailableError,
    WebhookRequest,
    parse_score,
)
from nps_ingest.entrypoints.hot_routes import BodyLimit, HotRoutes, RawRequest, RawResponse
from nps_ingest.handlers import (
    BrokerUnavailableError,
    EventPublisher,
    Received,
    ResponseFetcher,
    receive_batch,
    receive_opt_out,
    receive_response,
    receive_webhook,
    sources_by_token,
)
from nps_kit.clock import Clock
from nps_kit.http import Problem, ReadinessCheck, create_app, field_message
from nps_kit.logging import get_logger
from nps_kit.metrics import labelled

log = get_logger(__name__)

WEBHOOKS = Counter(
    "npsloop_ingest_webhooks_total",
    "Webhook deliveries by source (`unknown` for no such source) and outcome: accepted, "
    "ignored, undeclared_type, bad_signature, stale, malformed, invalid, vendor_unavailable, "
    "broker_unavailable, unknown_source.",
    ["source", "outcome"],
)
ATTRIBUTES_SET_ASIDE = Counter(
    "npsloop_ingest_attributes_set_aside_total",
    "Customer fields from a survey tool that could not become attributes, by source.",
    ["source"],
)
COMMENTS_TRUNCATED = Counter(
    "npsloop_ingest_comments_truncated_total",
    "Comments cut to the configured limit, by source.",
    ["source"],
)

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


def _accepted(received: Received) -> Accepted:
    event = received.event
    if isinstance(event, ContactOptOut):
        return Accepted(event_id=str(event.event_id()), type="opt_out")
    if received.comment_truncated:
        COMMENTS_TRUNCATED.labels(source=event.source).inc()
    return Accepted(
        event_id=str(event.event_id()),
        response_id=str(event.response_id),
        comment_truncated=received.comment_truncated,
    )


def _webhook_item(received: Received) -> WebhookItem:
    item = WebhookItem(**_accepted(received).model_dump())
    if received.attributes_set_aside:
        ATTRIBUTES_SET_ASIDE.labels(source=received.event.source).inc(
            len(received.attributes_set_aside)
        )
        # Field names and reasons only: the values are the customer's data.
        log.info(
            "webhook.attributes_set_aside",
            source=received.event.source,
            fields=list(received.attributes_set_aside),
        )
        item.attributes_set_aside = list(received.attributes_set_aside)
    return item


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="npsloop-ingest"'}
    )


def _unavailable(what: str, exc: Exception, retry_after: int) -> Problem:
    return Problem(
        503,
        f"{what} unavailable",
        f"Nothing was lost and nothing is kept: {exc}. Retry later.",
        headers={"Retry-After": str(retry_after)},
    )


def _invalid(exc: InvalidResponseError) -> Problem:
    return Problem(
        422,
        "Invalid response",
        str(exc),
        errors=[{"field": exc.field, "message": exc.message}],
    )


def _item_error(exc: ValidationError | InvalidResponseError) -> str:
    if isinstance(exc, InvalidResponseError):
        return str(exc)
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'item'}: {field_message(err)}"
        for err in exc.errors()
    )


def _csv_item(row: Mapping[str, str]) -> dict[str, Any]:
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


def router(  # noqa: PLR0915 - one closure per route over the same dependencies
    *,
    sources: Mapping[str, Source],
    publisher: EventPublisher,
    clock: Clock,
    publish_timeout: float,
    webhooks: "WebhookIntake",
    comment_limit: int = 10_000,
) -> APIRouter:
    api = APIRouter()
    tokens = sources_by_token(sources)

    async def authenticated_source(authorization: Annotated[str | None, Header()] = None) -> str:
        if not authorization:
            raise _unauthorized("Send 'Authorization: Bearer <token>'.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("Send 'Authorization: Bearer <token>'.")
        source = source_for_token(token.strip(), tokens)
        if source is None:
            raise _unauthorized("The token is not valid.")
        return source

    @api.post(
        "/v1/responses",
        status_code=202,
        response_model=Accepted,
        response_model_exclude_none=True,
        summary="Receive one survey response",
        responses={
            401: {"description": "Missing or wrong bearer token (problem+json)."},
            413: {"description": "The body is larger than the limit (problem+json)."},
            422: {"description": "Invalid response; `errors` names each field (problem+json)."},
            503: {"description": "The broker is unavailable; retry after `Retry-After` seconds."},
        },
    )
    async def post_response(
        body: ResponseIn, source: Annotated[str, Depends(authenticated_source)]
    ) -> Accepted:
        """Answers 202 once the broker has acknowledged the `ResponseReceived` event.
        Posting the same response again is safe: it yields the same event id. Posting it with
        a changed score or comment is an update of that response."""
        try:
            received = await receive_response(
                body.to_domain(),
                source=source,
                publisher=publisher,
                clock=clock,
                ack_timeout=publish_timeout,
                comment_limit=comment_limit,
            )
        except InvalidResponseError as exc:
            raise _invalid(exc) from exc
        except BrokerUnavailableError as exc:
            raise _unavailable("Broker", exc, 5) from exc
        return _accepted(received)

    @api.post(
        "/v1/opt-outs",
        status_code=202,
        response_model=Accepted,
        response_model_exclude_none=True,
        summary="A customer asks not to be contacted",
        responses={
            401: {"description": "Missing or wrong bearer token (problem+json)."},
            422: {"description": "Invalid opt-out; `errors` names each field (problem+json)."},
            503: {"description": "The broker is unavailable; retry after `Retry-After` seconds."},
        },
    )
    async def post_opt_out(
        body: OptOutIn, source: Annotated[str, Depends(authenticated_source)]
    ) -> Accepted:
        """Published as `ContactOptOut`; followup stops contacting the customer. Answers 202
        once the broker has acknowledged it."""
        if body.occurred_at.tzinfo is None:
            raise _invalid(InvalidResponseError("occurred_at", "must include a time zone offset"))
        try:
            received = await receive_opt_out(
                OptOut(
                    customer_id=body.customer_id,
                    provider_event_id=body.opt_out_id,
                    occurred_at=body.occurred_at,
                    scope=body.scope,
                ),
                source=source,
                publisher=publisher,
                clock=clock,
                ack_timeout=publish_timeout,
            )
        except InvalidResponseError as exc:
            raise _invalid(exc) from exc
        except BrokerUnavailableError as exc:
            raise _unavailable("Broker", exc, 5) from exc
        return _accepted(received)

    async def batch(
        items: list[dict[str, Any] | str], source: str, *, backfill: bool
    ) -> BatchResult:
        """`items` are decoded responses, or the error that already refused one."""
        domain: list[CanonicalResponse | None] = []
        refused: dict[int, str] = {}
        for index, item in enumerate(items):
            if isinstance(item, str):
                domain.append(None)
                refused[index] = item
                continue
            try:
                domain.append(ResponseIn.model_validate(item).to_domain())
            except (ValidationError, InvalidResponseError) as exc:
                domain.append(None)
                refused[index] = _item_error(exc)
        outcomes = await receive_batch(
            domain,
            source=source,
            publisher=publisher,
            clock=clock,
            ack_timeout=publish_timeout,
            comment_limit=comment_limit,
            backfill=backfill,
        )
        results = []
        for index, outcome in enumerate(outcomes):
            if outcome is None:
                results.append(ItemResult(index=index, status="error", error=refused[index]))
                continue
            accepted = _accepted(outcome.received) if outcome.received else None
            results.append(
                ItemResult(
                    index=index,
                    status=outcome.status,
                    event_id=accepted.event_id if accepted else None,
                    response_id=accepted.response_id if accepted else None,
                    comment_truncated=accepted.comment_truncated if accepted else False,
                    error=outcome.error,
                )
            )
        return BatchResult(
            accepted=sum(r.status == "accepted" for r in results),
            duplicates=sum(r.status == "duplicate" for r in results),
            errors=sum(r.status == "error" for r in results),
            results=results,
        )

    @api.post(
        "/v1/responses/batch",
        response_model=BatchResult,
        response_model_exclude_none=True,
        summary=f"Receive up to {MAX_BATCH} responses, with one result each",
        responses={
            401: {"description": "Missing or wrong bearer token (problem+json)."},
            413: {"description": "The body is larger than the limit (problem+json)."},
            422: {"description": "Not a batch: no `responses`, or more than 1,000."},
        },
    )
    async def post_batch(
        body: BatchIn,
        source: Annotated[str, Depends(authenticated_source)],
        backfill: Annotated[bool, Query(description=BACKFILL)] = False,
    ) -> BatchResult:
        """Each item is validated and published on its own: one bad item never sinks the
        rest. `duplicate` marks an item identical to an earlier one in the same batch; an
        `error` item may be re-posted alone once fixed."""
        return await batch(list(body.responses), source, backfill=backfill)

    @api.post(
        "/v1/responses/import",
        response_model=BatchResult,
        response_model_exclude_none=True,
        summary="Back-fill historical responses from CSV",
        openapi_extra=CSV_BODY,
        responses={
            400: {"description": "Not CSV, or a header without the required columns."},
            401: {"description": "Missing or wrong bearer token (problem+json)."},
            413: {"description": "The body is larger than the limit (problem+json)."},
        },
    )
    async def post_csv(
        request: Request,
        source: Annotated[str, Depends(authenticated_source)],
        backfill: Annotated[bool, Query(description=BACKFILL)] = False,
    ) -> BatchResult:
        """A header row, then one response per row. Columns: response_id, survey_id,
        customer_id, customer_email, customer_name, score, comment, responded_at (a header
        with any other column is refused). One result per row, as for a batch (`index` 0 is
        the first row after the header, `line` the line it starts on): a row with more or
        fewer fields than the header, or with a quote left open (which would swallow the rows
        after it), is an `error` of its own, and the rows after it are read as usual."""
        try:
            text = (await request.body()).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise Problem(400, "Malformed CSV", "The body is not UTF-8 text.") from exc
        try:
            header, rows = read_csv(text, max_rows=MAX_CSV_ROWS)
        except CsvHeaderError as exc:
            raise Problem(400, "Malformed CSV", str(exc)) from exc
        missing = {"response_id", "survey_id", "score", "responded_at"} - set(header)
        if missing:
            raise Problem(400, "Malformed CSV", f"Missing columns: {', '.join(sorted(missing))}.")
        unknown = [name for name in header if name not in CSV_COLUMNS]
        twice = sorted({name for name in header if header.count(name) > 1})
        if unknown or twice:
            said = (f"Unknown columns: {', '.join(unknown)}. " if unknown else "") + (
                f"Columns named twice: {', '.join(twice)}. " if twice else ""
            )
            raise Problem(
                400,
                "Malformed CSV",
                f"{said}The columns are {', '.join(CSV_COLUMNS)}; nothing is left out silently.",
            )
        if not rows or len(rows) > MAX_CSV_ROWS:
            raise Problem(400, "Malformed CSV", f"Send 1 to {MAX_CSV_ROWS} rows after the header.")
        items: list[dict[str, Any] | str] = []
        for row in rows:
            if row.cells is None:
                items.append(row.error or f"line {row.line} cannot be read")
                continue
            try:
                items.append(_csv_item(row.cells))
            except InvalidResponseError as exc:
                items.append(str(exc))
        answer = await batch(items, source, backfill=backfill)
        for result, row in zip(answer.results, rows, strict=True):
            result.line = row.line
        return answer

    @api.post(
        "/v1/webhooks/{source}",
        status_code=202,
        response_model=WebhookAccepted,
        response_model_exclude_none=True,
        summary="Receive a provider's webhook in its own format",
        openapi_extra=WEBHOOK_BODY,
        responses={
            400: {"description": "The body is not the provider's format (problem+json)."},
            401: {"description": "Missing or wrong signature, or a stale timestamp."},
            404: {"description": "No such source (problem+json)."},
            413: {"description": "The body is larger than the limit (problem+json)."},
            422: {"description": "A value is wrong, e.g. a score outside 0–10 (problem+json)."},
            503: {"description": "The broker or the provider's API is unavailable; retry."},
        },
    )
    async def post_webhook(source: str, request: Request) -> WebhookAccepted:
        """`source` names a source of the sources file; its provider says how the delivery is
        signed and shaped (Delighted, Typeform, Formbricks, Standard Webhooks, Wootric,
        AskNicely, SurveyMonkey, HubSpot, Qualtrics). Answers 202 once the broker has
        acknowledged every event; a replayed delivery yields the same event ids."""
        # In a running ingest, `WebhookIntake.hot` serves this route ahead of FastAPI (see
        # `http_app`); this declaration documents it and serves an app built without it.
        return await webhooks.answer(
            source,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
            url=str(request.url),
        )

    @api.post(
        "/v1/webhooks/{source}/{secret}",
        status_code=202,
        response_model=WebhookAccepted,
        response_model_exclude_none=True,
        summary="Receive the webhook of a provider that can neither sign nor add a header",
        responses={
            400: {"description": "The body is not the provider's format (problem+json)."},
            401: {"description": "The secret segment matches none of the source's secrets."},
            404: {"description": "No such source, or the source is not proven by its URL."},
            413: {"description": "The body is larger than the limit (problem+json)."},
            422: {"description": "A value is wrong, e.g. an id of the wrong form (problem+json)."},
            503: {"description": "The broker or the provider's API is unavailable; retry."},
        },
    )
    async def post_webhook_with_secret(
        source: str, secret: str, request: Request
    ) -> WebhookAccepted:
        """For a source whose `proof` is `path_secret` (a Qualtrics subscription without a
        shared key): the last segment is one of its secrets. The delivery's ids are trusted
        only once the provider's API returns the response they name (docs/sources.md)."""
        return await webhooks.answer(
            source,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
            url=str(request.url),
            path_secret=secret,
        )

    return api


class WebhookIntake:
    """`POST /v1/webhooks/{source}`: a provider's delivery, verified, normalised, published."""

    def __init__(
        self,
        *,
        sources: Mapping[str, Source],
        adapters: Mapping[Provider, ProviderAdapter],
        fetchers: Mapping[Provider, ResponseFetcher],
        publisher: EventPublisher,
        clock: Clock,
        publish_timeout: float,
        comment_limit: int,
    ) -> None:
        self.sources = sources
        self.adapters = adapters
        self.fetchers = fetchers
        self.publisher = publisher
        self.clock = clock
        self.publish_timeout = publish_timeout
        self.comment_limit = comment_limit

    async def answer(
        self,
        source: str,
        *,
        headers: Mapping[str, str],
        body: bytes,
        url: str | Callable[[], str],
        path_secret: str | None = None,
    ) -> WebhookAccepted:
        """What was published for the delivery; a `Problem` naming what is wrong otherwise.
        `path_secret`: the last segment of `/v1/webhooks/{source}/{secret}`, if so posted."""
        found = self.sources.get(source)
        adapter = self.adapters.get(found.provider) if found else None
        if found is None or adapter is None:
            _count("unknown", "unknown_source")
            raise Problem(404, "Unknown source", f"No webhook source is named {source[:100]!r}.")
        if path_secret is not None and found.proof is not Proof.PATH_SECRET:
            # Only a source proven by its URL has one; the secret is never echoed back.
            _count("unknown", "unknown_source")
            raise Problem(
                404, "Unknown source", f"Source {source[:100]!r} has no URL with a secret segment."
            )

        try:
            outcome = await receive_webhook(
                WebhookRequest(headers=headers, body=body, url=url, path_secret=path_secret),
                source=found,
                adapter=adapter,
                fetcher=self.fetchers.get(found.provider),
                publisher=self.publisher,
                clock=self.clock,
                ack_timeout=self.publish_timeout,
                comment_limit=self.comment_limit,
            )
        except StaleTimestampError as exc:
            _count(found.name, "stale")
            raise Problem(401, "Stale timestamp", f"{exc}.") from exc
        except SignatureError as exc:
            _count(found.name, "bad_signature")
            raise Problem(401, "Invalid signature", f"{exc}.") from exc
        except MalformedPayloadError as exc:
            _count(found.name, "malformed")
            raise Problem(400, "Malformed payload", f"{exc}.") from exc
        except InvalidResponseError as exc:
            _count(found.name, "invalid")
            raise _invalid(exc) from exc
        except VendorUnavailableError as exc:
            _count(found.name, "vendor_unavailable")
            raise _unavailable("Provider API", exc, 30) from exc
        except BrokerUnavailableError as exc:
            _count(found.name, "broker_unavailable")
            raise _unavailable("Broker", exc, 5) from exc
        if outcome.undeclared:
            _count(found.name, "undeclared_type")
            log.warning("webhook.undeclared_type", source=found.name, reason=outcome.undeclared)
        elif outcome.ignored:
            _count(found.name, "ignored")
            log.info("webhook.ignored", source=found.name, reason=outcome.ignored)
        else:
            _count(found.name, "accepted")
        return WebhookAccepted(
            accepted=[_webhook_item(r) for r in outcome.received],
            ignored=outcome.ignored,
            warning=outcome.undeclared,
        )

    async def hot(self, request: RawRequest) -> RawResponse:
        """The same, served by `HotRoutes` ahead of FastAPI: the high-volume path."""
        accepted = await self.answer(
            request.path_params["source"],
            headers=request.headers,
            body=request.body,
            url=lambda: request.url,
            path_secret=request.path_params.get("secret"),
        )
        return RawResponse(202, accepted.model_dump_json(exclude_none=True).encode())


def _count(source: str, outcome: str) -> None:
    labelled(WEBHOOKS, source, outcome).inc()


def http_app(
    *,
    sources: Mapping[str, Source],
    adapters: Mapping[Provider, ProviderAdapter],
    fetchers: Mapping[Provider, ResponseFetcher],
    publisher: EventPublisher,
    clock: Clock,
    publish_timeout: float,
    comment_limit: int = 10_000,
    max_body_bytes: int = 1024 * 1024,
    readiness: Mapping[str, ReadinessCheck] | None = None,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    docs: bool = False,
) -> ASGIApp:
    """Ingest's HTTP app, for production and tests alike: the kit's app (probes, metrics,
    problem+json) with the body limit and the API, behind the webhook route served hot —
    outside FastAPI altogether, so that none of its middlewares runs for a webhook."""
    app = create_app(
        title="npsloop ingest",
        description=(
            "Receives NPS survey responses, in npsloop's own JSON or in each upstream product's "
            "webhook format; publishes them as `ResponseReceived` events."
        ),
        version="0.2.0",
        readiness=readiness or {},
        lifespan=lifespan,
        docs=docs,
    )
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    dependencies: dict[str, Any] = {
        "sources": sources,
        "publisher": publisher,
        "clock": clock,
        "publish_timeout": publish_timeout,
        "comment_limit": comment_limit,
    }
    webhooks = WebhookIntake(**dependencies, adapters=adapters, fetchers=fetchers)
    app.include_router(router(**dependencies, webhooks=webhooks), tags=["intake"])
    return HotRoutes(
        app,
        routes={
            ("POST", "/v1/webhooks/{source}"): webhooks.hot,
            ("POST", "/v1/webhooks/{source}/{secret}"): webhooks.hot,
        },
        max_body_bytes=max_body_bytes,
    )
