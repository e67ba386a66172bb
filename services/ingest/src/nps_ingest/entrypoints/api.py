"""Ingest's HTTP API: translate the request, call one handler, map the result. Here the
canonical API's routes and the app put together; the request and answer bodies are in
`bodies`, the answers' counters and the problems in `answers`, and the webhook deliveries in
`webhook_intake`."""

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from pydantic import ValidationError
from starlette.types import ASGIApp

from nps_ingest.adapters.csv_rows import CsvHeaderError, read_csv
from nps_ingest.domain.responses import CanonicalResponse
from nps_ingest.domain.sources import Provider, Source
from nps_ingest.domain.webhooks import InvalidResponseError, OptOut, ProviderAdapter
from nps_ingest.entrypoints.answers import (
    accepted_of,
    invalid_response,
    item_error,
    unavailable,
)
from nps_ingest.entrypoints.bodies import (
    BACKFILL,
    CSV_BODY,
    CSV_COLUMNS,
    MAX_BATCH,
    MAX_CSV_ROWS,
    WEBHOOK_BODY,
    Accepted,
    BatchIn,
    BatchResult,
    ItemResult,
    OptOutIn,
    ResponseIn,
    WebhookAccepted,
    csv_item,
)
from nps_ingest.entrypoints.hot_routes import BodyLimit, HotRoutes
from nps_ingest.entrypoints.response_intake import ResponseIntake, bearer_source
from nps_ingest.entrypoints.webhook_intake import WebhookIntake
from nps_ingest.handlers import (
    BrokerUnavailableError,
    EventPublisher,
    ResponseFetcher,
    receive_batch,
    receive_opt_out,
    sources_by_token,
)
from nps_kit.clock import Clock
from nps_kit.http import Problem, ReadinessCheck, create_app


def router(  # noqa: PLR0915 - one closure per route over the same dependencies
    *,
    sources: Mapping[str, Source],
    publisher: EventPublisher,
    clock: Clock,
    publish_timeout: float,
    webhooks: WebhookIntake,
    responses: ResponseIntake,
    comment_limit: int = 10_000,
) -> APIRouter:
    api = APIRouter()
    tokens = sources_by_token(sources)

    async def authenticated_source(authorization: Annotated[str | None, Header()] = None) -> str:
        return bearer_source(authorization, tokens)

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
        # In a running ingest, `ResponseIntake.hot` serves this route ahead of FastAPI (see
        # `http_app`); this declaration documents it and answers through the same step.
        return await responses.answer(body, source)

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
            raise invalid_response(
                InvalidResponseError("occurred_at", "must include a time zone offset")
            )
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
            raise invalid_response(exc) from exc
        except BrokerUnavailableError as exc:
            raise unavailable("Broker", exc, 5) from exc
        return accepted_of(received)

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
                refused[index] = item_error(exc)
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
            accepted = accepted_of(outcome.received) if outcome.received else None
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
                items.append(csv_item(row.cells))
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
    problem+json) with the body limit and the API, behind the webhook routes and the canonical
    `POST /v1/responses` served hot — outside FastAPI altogether, so that none of its
    middlewares runs for them."""
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
    responses = ResponseIntake(**dependencies)
    app.include_router(
        router(**dependencies, webhooks=webhooks, responses=responses), tags=["intake"]
    )
    return HotRoutes(
        app,
        routes={
            ("POST", "/v1/responses"): responses.hot,
            ("POST", "/v1/webhooks/{source}"): webhooks.hot,
            ("POST", "/v1/webhooks/{source}/{secret}"): webhooks.hot,
        },
        max_body_bytes=max_body_bytes,
    )
