"""Webhook deliveries: a provider's delivery verified, read by its adapter, published, and
answered; served by `HotRoutes` ahead of FastAPI."""

from collections.abc import Callable, Mapping

from prometheus_client import Counter

from nps_ingest.domain.signatures import SignatureError, StaleTimestampError
from nps_ingest.domain.sources import Proof, Provider, Source
from nps_ingest.domain.webhooks import (
    InvalidResponseError,
    MalformedPayloadError,
    ProviderAdapter,
    VendorUnavailableError,
    WebhookRequest,
)
from nps_ingest.entrypoints.answers import invalid_response, unavailable, webhook_item_of
from nps_ingest.entrypoints.bodies import WebhookAccepted
from nps_ingest.entrypoints.hot_routes import RawRequest, RawResponse
from nps_ingest.handlers import (
    BrokerUnavailableError,
    EventPublisher,
    ResponseFetcher,
    receive_webhook,
)
from nps_kit.clock import Clock
from nps_kit.http import Problem
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
            raise invalid_response(exc) from exc
        except VendorUnavailableError as exc:
            _count(found.name, "vendor_unavailable")
            raise unavailable("Provider API", exc, 30) from exc
        except BrokerUnavailableError as exc:
            _count(found.name, "broker_unavailable")
            raise unavailable("Broker", exc, 5) from exc
        if outcome.undeclared:
            _count(found.name, "undeclared_type")
            log.warning("webhook.undeclared_type", source=found.name, reason=outcome.undeclared)
        elif outcome.ignored:
            _count(found.name, "ignored")
            log.info("webhook.ignored", source=found.name, reason=outcome.ignored)
        else:
            _count(found.name, "accepted")
        return WebhookAccepted(
            accepted=[webhook_item_of(r) for r in outcome.received],
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
