"""The four services' HTTP apps as their composition roots build them (nothing connects until
the lifespan starts, which these tests never do): what their OpenAPI documents say about
operations, and which operational endpoints the API's port serves."""

import re
from collections.abc import Callable

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from nps_followup.bootstrap import build as build_followup
from nps_followup.config import FollowupSettings
from nps_ingest.bootstrap import build as build_ingest
from nps_ingest.config import IngestSettings, load_sources
from nps_ingest.entrypoints.hot_routes import HotRoutes
from nps_kit.http import PROBLEM_JSON, create_app, metrics_app
from nps_kit.settings import HttpServerSettings
from nps_notify.bootstrap import build as build_notify
from nps_notify.config import NotifySettings
from nps_scoring.bootstrap import build as build_scoring
from nps_scoring.config import ScoringSettings

#: Each service's tag, given where its bootstrap includes its router.
TAGS = {
    "ingest": "intake",
    "scoring": "NPS figures",
    "followup": "follow-up",
    "notify": "helpdesk webhooks",
}


def _fastapi(app: object) -> FastAPI:
    """The FastAPI app under ingest's hot routes (the others are FastAPI apps already)."""
    inner = app.app if isinstance(app, HotRoutes) else app
    assert isinstance(inner, FastAPI)
    return inner


def _ingest(http: HttpServerSettings) -> FastAPI:
    settings = IngestSettings(api_tokens={"shop": "a-token-for-the-docs"}, http=http)
    return _fastapi(build_ingest(settings, sources=load_sources(settings)).app)


def _scoring(http: HttpServerSettings) -> FastAPI:
    return _fastapi(build_scoring(ScoringSettings(http=http)).app)


def _followup(http: HttpServerSettings) -> FastAPI:
    return _fastapi(build_followup(FollowupSettings(http=http)).app)


def _notify(http: HttpServerSettings) -> FastAPI:
    return _fastapi(build_notify(NotifySettings(http=http)).app)


BUILDERS: dict[str, Callable[[HttpServerSettings], FastAPI]] = {
    "ingest": _ingest,
    "scoring": _scoring,
    "followup": _followup,
    "notify": _notify,
}
SERVICES = pytest.mark.parametrize("service", list(BUILDERS))


def _operations(app: FastAPI) -> dict[tuple[str, str], dict[str, object]]:
    """Every documented operation, by (method, path)."""
    return {
        (method.upper(), path): operation
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    }


# Built inside the event loop: the consumers' clients want a running loop (they do not start).
@SERVICES
async def test_operation_ids_are_unique_identifiers_within_the_service(service: str) -> None:
    ids = [
        op["operationId"] for op in _operations(BUILDERS[service](HttpServerSettings())).values()
    ]
    assert ids, f"{service} documents no operation"
    assert len(set(ids)) == len(ids), f"{service} repeats an operation id: {sorted(ids)}"
    # A function name: no path or method appended (FastAPI's default: get_cases_v1_cases_get).
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) and "v1" not in i for i in ids), ids


def test_an_operation_id_is_the_route_function_name_wherever_the_route_is_mounted() -> None:
    router = APIRouter()

    @router.get("/v1/cases/{case_id}")
    async def get_case(case_id: int) -> int:
        return case_id

    documents = []
    for prefix in ("", "/v2"):
        app = create_app(title="t", description="t", version="0", readiness={})
        app.include_router(router, prefix=prefix)
        documents.append(_operations(app))
    assert [[op["operationId"] for op in doc.values()] for doc in documents] == [
        ["get_case"],
        ["get_case"],
    ]


@SERVICES
async def test_every_operation_carries_its_service_tag(service: str) -> None:
    operations = _operations(BUILDERS[service](HttpServerSettings()))
    assert {key: op.get("tags") for key, op in operations.items()} == {
        key: [TAGS[service]] for key in operations
    }


@SERVICES
async def test_docs_and_the_openapi_document_are_not_served_by_default(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HTTP_DOCS_ENABLED", raising=False)
    app = BUILDERS[service](HttpServerSettings())
    client = TestClient(app)  # no `with`: the lifespan (connections) does not start
    for path in ("/docs", "/redoc", "/openapi.json"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == PROBLEM_JSON
    assert app.openapi()["paths"], "the document still exists in process"


@SERVICES
async def test_docs_and_the_openapi_document_are_served_when_enabled(service: str) -> None:
    client = TestClient(BUILDERS[service](HttpServerSettings(docs_enabled=True)))
    document = client.get("/openapi.json")
    assert document.status_code == 200
    assert document.json()["paths"]
    for path in ("/docs", "/redoc"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "/openapi.json" in answer.text


@SERVICES
async def test_the_api_port_has_no_metrics(service: str) -> None:
    answer = TestClient(BUILDERS[service](HttpServerSettings(docs_enabled=True))).get("/metrics")
    assert answer.status_code == 404


def test_the_metrics_app_serves_the_process_metrics_and_nothing_else() -> None:
    app = create_app(title="t", description="t", version="0", readiness={})
    TestClient(app).get("/livez")  # counted by the app's request metrics
    metrics = TestClient(metrics_app())
    scrape = metrics.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    assert 'npsloop_http_requests_total{method="GET",route="/livez",status="200"}' in scrape.text
    for path in ("/livez", "/readyz", "/openapi.json", "/"):
        other = metrics.get(path)
        assert other.status_code == 404, path
        assert other.headers["content-type"] == PROBLEM_JSON
    posted = metrics.post("/metrics")
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET, HEAD"


def _notify_with_webhooks(http: HttpServerSettings) -> FastAPI:
    settings = NotifySettings.model_validate(
        {
            "http": http,
            "zendesk": {"webhook_secrets": ["zendesk-secret"]},
            "jira": {"webhook_secrets": ["jira-secret"]},
        }
    )
    return _fastapi(build_notify(settings).app)


@pytest.mark.parametrize("service", ["scoring", "followup", "notify"])
async def test_every_documented_route_of_the_composed_service_answers_401_without_a_credential(
    service: str,
) -> None:
    """Walked from the service's own OpenAPI document as its composition root builds it, so a
    route added anywhere cannot be forgotten: scoring's and followup's need a bearer token,
    notify's webhooks their helpdesk's signature (ingest's have tests of their own). Nothing
    connects: a request without a credential is refused before any work."""
    builder = _notify_with_webhooks if service == "notify" else BUILDERS[service]
    app = builder(HttpServerSettings())
    client = TestClient(app)  # no `with`: the lifespan (connections) does not start
    operations = _operations(app)
    assert operations
    values = {"case_id": "7b0c5a5e-8f52-4d6a-9a55-7f0c2a1d7c11", "scope": "email"}
    for method, path in operations:
        url = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)
        answer = client.request(method, url, json={} if method in ("POST", "PUT") else None)
        assert answer.status_code == 401, (service, method, path, answer.text)
        assert answer.headers["content-type"] == PROBLEM_JSON
