"""Who may call what on scoring's and followup's APIs (issue #13), against the real database
and the dev identity provider served over HTTP, with really signed tokens.

- every route of every OpenAPI document answers 401 without a token (walked from the
  documents, so that a new route cannot be forgotten);
- the README's route-by-role table is run row by row, and covers every route;
- an agent or lead cannot read or change another team's case; a viewer sees figures, no PII;
- an owner must be a member of the case's team (422, no email);
- every way a token can be wrong is a 401 with RFC 6750's `WWW-Authenticate`;
- the timeline and the `nps.cases.v1` events name who did each step.
"""

import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from nps_events import Actor, ActorKind, decode
from nps_followup.adapters import tables as followup_tables
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.entrypoints import api as followup_api
from nps_followup.handlers import PolicyInForce, resolve_case
from nps_kit.access import Access
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.devstack.idp import DevIdentityProvider, subject_of
from nps_kit.http import create_app
from nps_scoring.entrypoints import api as scoring_api
from tests.integration.test_scoring import response, score
from tests.support.cases import detractor_case, footprint
from tests.support.helpdesk import helpdesk_app
from tests.support.infra import Infra

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
README = Path(__file__).parents[2] / "README.md"

#: The shipped policy with a second team, whose cases are the enterprise customers'.
_POLICY = parse_policy(
    default_policy_text()
    .replace(
        "teams:\n",
        "teams:\n  enterprise:\n    lead: ent-lead@example.com\n    members: [erin@example.com]\n",
        1,
    )
    .replace(
        "rules:\n",
        "rules:\n  - name: enterprise-detractor\n"
        "    when: {segment: detractor, attributes: {plan: enterprise}}\n"
        "    case: {team: enterprise, owner: round_robin, contact_within: 2 business days}\n"
        "    actions: []\n",
        1,
    )
)
POLICY = PolicyInForce(policy=_POLICY, holidays_for=holidays_for(_POLICY))

VIEWER = "analyst@example.com"
AGENT = "alex@example.com"  # customer-success
LEAD = "cs-lead@example.com"  # customer-success's lead
ADMIN = "admin@example.com"
OTHER_AGENT = "erin@example.com"  # enterprise
PEOPLE = {"viewer": VIEWER, "agent": AGENT, "lead": LEAD, "admin": ADMIN}


@dataclass
class Apis:
    scoring: httpx.AsyncClient
    followup: httpx.AsyncClient
    notify: httpx.AsyncClient
    documents: dict[str, dict[str, Any]]


def _client(app: Any, base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


@pytest.fixture(scope="module")
async def apis(sessions: SessionFactory, access: Access) -> AsyncIterator[Apis]:
    scoring = create_app(title="scoring", description="", version="test", readiness={})
    scoring.include_router(
        scoring_api.router(sessions=sessions, timezone="UTC", labels={}, access=access)
    )
    followup = create_app(title="followup", description="", version="test", readiness={})
    followup.include_router(
        followup_api.router(sessions=sessions, clock=FrozenClock(NOW), policy=POLICY, access=access)
    )
    notify = helpdesk_app(sessions, now=NOW, zendesk_secrets=["z"], jira_secrets=["j"])
    async with (
        _client(scoring, "http://scoring") as s,
        _client(followup, "http://followup") as f,
        _client(notify, "http://notify") as n,
    ):
        yield Apis(
            s,
            f,
            n,
            {
                "scoring": scoring.openapi(),
                "followup": followup.openapi(),
                "notify": notify.openapi(),
            },
        )


def _client_of(apis: Apis, service: str) -> httpx.AsyncClient:
    return {"scoring": apis.scoring, "followup": apis.followup, "notify": apis.notify}[service]


async def _case(sessions: SessionFactory, *, team: str = "customer-success") -> uuid.UUID:
    """A detractor's open case of `team` (enterprise customers go to the enterprise team)."""
    plan = "enterprise" if team == "enterprise" else "pro"
    case = await detractor_case(
        sessions, POLICY, now=NOW, source="access", attributes={"plan": plan}, comment="Slow"
    )
    assert case.team == team
    return case.case_id


async def _case_response(sessions: SessionFactory, team: str) -> uuid.UUID:
    """The response a case of `team` was opened from."""
    plan = "enterprise" if team == "enterprise" else "pro"
    case = await detractor_case(
        sessions, POLICY, now=NOW, source="access", attributes={"plan": plan}, comment="Slow"
    )
    return case.response_id


async def _resolved(sessions: SessionFactory, *, team: str = "customer-success") -> uuid.UUID:
    case_id = await _case(sessions, team=team)
    async with unit_of_work(sessions) as session:
        await resolve_case(
            FollowupRepository(session),
            case_id,
            root_cause="onboarding",
            note=None,
            actor=Actor.system("test"),
            now=NOW,
            policy=POLICY,
        )
    return case_id


# --- 401 on every route without a token ----------------------------------------------------


def _routes(apis: Apis) -> list[tuple[str, str, str]]:
    return sorted(
        (service, method.upper(), path)
        for service, document in apis.documents.items()
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    )


def _filled(path: str) -> str:
    values = {"case_id": str(uuid.uuid4()), "customer_id": "c-1", "scope": "email"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


async def test_every_route_of_every_api_answers_401_without_a_credential(apis: Apis) -> None:
    routes = _routes(apis)
    assert len(routes) >= 17, routes  # 3 of scoring's, 12 of followup's, 2 of notify's
    refused = []
    for service, method, path in routes:
        body = {"json": {}} if method in ("POST", "PUT") else {}
        answer = await _client_of(apis, service).request(method, _filled(path), **body)  # type: ignore[arg-type]
        refused.append((service, method, path, answer.status_code))
        assert answer.headers["content-type"] == "application/problem+json", (path, answer.text)
    assert [r for r in refused if r[3] != 401] == []


async def test_the_openapi_documents_say_which_operations_need_a_token(apis: Apis) -> None:
    for service in ("scoring", "followup"):
        document = apis.documents[service]
        scheme = document["components"]["securitySchemes"]["openIdConnect"]
        assert scheme["type"] == "openIdConnect"
        assert scheme["openIdConnectUrl"].endswith("/.well-known/openid-configuration")
        for path, item in document["paths"].items():
            for method, operation in item.items():
                assert operation["security"] == [{"openIdConnect": []}], (method, path)
                for status in ("401", "403"):
                    content = operation["responses"][status]["content"]
                    assert list(content) == ["application/problem+json"], (method, path)


# --- the README's route x role table ----------------------------------------------------------


def _readme_table() -> dict[tuple[str, str], dict[str, str]]:
    """`| `GET /v1/cases` | — | team | team | yes |` rows of the README's access table."""
    text = README.read_text()
    start = text.index("<!-- access-table -->")
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        found = re.fullmatch(r"`(GET|POST|PUT|DELETE) (\S+)`.*", cells[0])
        if found:
            rows[(found[1], found[2])] = dict(zip(PEOPLE, cells[1:5], strict=True))
    return rows


def test_the_readme_table_covers_every_route_of_scoring_and_followup(apis: Apis) -> None:
    documented = set(_readme_table())
    routes = {(m, p) for s, m, p in _routes(apis) if s != "notify"}
    assert routes == documented


@dataclass(frozen=True)
class Call:
    """How to exercise one route on a case (or customer) prepared for it."""

    service: str
    prepare: Callable[[SessionFactory, str], Any] | None = None
    body: Callable[[str], dict[str, Any]] | None = None


async def _opted_out(sessions: SessionFactory, _team: str) -> str:
    customer = f"dnc-{uuid.uuid4().hex[:8]}"
    async with unit_of_work(sessions) as session:
        await FollowupRepository(session).add_opt_out(
            customer, "email", source="api", reason=None, at=NOW
        )
    return customer


async def _answered(sessions: SessionFactory, _team: str) -> str:
    """A customer who answered one survey: their score history has one response."""
    customer = f"hist-{uuid.uuid4().hex[:8]}"
    await score(sessions, response(customer, f"{customer}-1", 4, comment="Too slow"))
    return customer


#: A referral code followup "sent" (recorded as sent, on a case of the team's).
ACCESS_CODE = "accesstestcodeab"


async def _referral_code_sent(sessions: SessionFactory, *, team: str) -> str:
    case_id = await _case(sessions, team=team)
    async with unit_of_work(sessions) as session:
        await FollowupRepository(session).issue_referral_codes(
            [(ACCESS_CODE, "c-access", case_id)], at=NOW
        )
    return ACCESS_CODE


def _member_of(team: str) -> str:
    return "sam@example.com" if team == "customer-success" else OTHER_AGENT


CALLS: dict[tuple[str, str], Call] = {
    ("GET", "/v1/nps"): Call("scoring"),
    ("GET", "/v1/nps/compare"): Call("scoring"),
    ("GET", "/v1/themes"): Call("scoring"),
    ("GET", "/v1/customers/{customer_id}/responses"): Call("scoring", prepare=_answered),
    ("GET", "/v1/figures"): Call("followup"),
    ("GET", "/v1/impact"): Call("followup"),
    ("GET", "/v1/policy"): Call("followup"),
    ("GET", "/v1/cases"): Call("followup"),
    ("GET", "/v1/cases/{case_id}"): Call("followup", prepare=lambda s, t: _case(s, team=t)),
    ("GET", "/v1/responses/{response_id}"): Call("followup", prepare=_case_response),
    ("POST", "/v1/cases/{case_id}/assign"): Call(
        "followup", prepare=lambda s, t: _case(s, team=t), body=lambda t: {"owner": _member_of(t)}
    ),
    ("POST", "/v1/cases/{case_id}/contacts"): Call(
        "followup",
        prepare=lambda s, t: _case(s, team=t),
        body=lambda _: {"channel": "phone", "outcome": "reached"},
    ),
    ("POST", "/v1/cases/{case_id}/resolve"): Call(
        "followup", prepare=lambda s, t: _case(s, team=t), body=lambda _: {"root_cause": "other"}
    ),
    ("POST", "/v1/cases/{case_id}/close"): Call(
        "followup", prepare=lambda s, t: _resolved(s, team=t), body=lambda _: {}
    ),
    ("POST", "/v1/cases/{case_id}/reopen"): Call(
        "followup", prepare=lambda s, t: _resolved(s, team=t), body=lambda _: {}
    ),
    ("GET", "/v1/do-not-contact/{customer_id}"): Call("followup", prepare=_opted_out),
    ("PUT", "/v1/do-not-contact/{customer_id}/{scope}"): Call(
        "followup", prepare=_opted_out, body=lambda _: {"reason": "asked"}
    ),
    ("DELETE", "/v1/do-not-contact/{customer_id}/{scope}"): Call("followup", prepare=_opted_out),
    ("POST", "/v1/referrals"): Call(
        "followup",
        prepare=lambda s, t: _referral_code_sent(s, team=t),
        body=lambda _: {
            "referral_id": f"access-{uuid.uuid4().hex}",
            "code": ACCESS_CODE,
            "referred_at": NOW.isoformat(),
        },
    ),
    ("GET", "/v1/referrals/figures"): Call("followup"),
}
QUERIES = {
    "/v1/nps/compare": {
        "a_from": "2026-10-01",
        "a_to": "2026-10-31",
        "b_from": "2026-11-01",
        "b_to": "2026-11-30",
    }
}


async def _call(
    apis: Apis,
    sessions: SessionFactory,
    infra: Infra,
    route: tuple[str, str],
    *,
    person: str,
    role: str | None = None,
    team: str = "customer-success",
) -> httpx.Response:
    method, template = route
    call = CALLS[route]
    prepared = str(await call.prepare(sessions, team)) if call.prepare else ""
    path = template.replace("{case_id}", prepared).replace("{customer_id}", prepared)
    path = path.replace("{response_id}", prepared)
    path = path.replace("{scope}", "email")
    body = call.body(team) if call.body else None
    params = QUERIES.get(template)
    if template == "/v1/cases" and team != "customer-success":
        params = {"team": team}
    if route == ("POST", "/v1/cases/{case_id}/assign") and role == "agent":
        body = {"owner": person}  # an agent may take a case themselves
    return await _client_of(apis, call.service).request(
        method,
        path,
        json=body,
        params=params,
        headers=infra.bearer(person, role),
    )


@pytest.mark.parametrize("route", sorted(CALLS))
async def test_the_readme_table_row_by_row(
    apis: Apis, sessions: SessionFactory, infra: Infra, route: tuple[str, str]
) -> None:
    row = _readme_table()[route]
    for role, person in PEOPLE.items():
        right = row[role]
        answer = await _call(apis, sessions, infra, route, person=person, role=role)
        if right == "—":
            assert answer.status_code == 403, (route, role, answer.text)
            assert answer.json()["required_role"] in ("agent", "lead", "admin")
        else:
            assert answer.status_code < 300, (route, role, answer.text)
        if right == "team":
            # Another team's case: refused, with why.
            other = await _call(
                apis, sessions, infra, route, person=person, role=role, team="enterprise"
            )
            assert other.status_code == 403, (route, role, other.text)
            assert (
                "not yours" in other.json()["detail"]
                or "not one of yours" in other.json()["detail"]
            )
        if right == "yes" and CALLS[route].prepare is not None:
            anyone = await _call(
                apis, sessions, infra, route, person=person, role=role, team="enterprise"
            )
            assert anyone.status_code < 300, (route, role, anyone.text)


async def test_an_agent_may_take_a_case_themselves_but_not_give_it_to_another(
    apis: Apis, sessions: SessionFactory, infra: Infra
) -> None:
    case_id = await _case(sessions)
    path = f"/v1/cases/{case_id}/assign"
    taken = await apis.followup.post(path, json={"owner": AGENT}, headers=infra.bearer(AGENT))
    assert taken.status_code == 200, taken.text
    assert taken.json()["owner"] == AGENT
    given = await apis.followup.post(
        path, json={"owner": "sam@example.com"}, headers=infra.bearer(AGENT)
    )
    assert given.status_code == 403
    assert given.json()["required_role"] == "lead"
    by_rule = await apis.followup.post(path, json={}, headers=infra.bearer(AGENT))
    assert by_rule.status_code == 403


# --- team scoping and PII -------------------------------------------------------------------


async def test_an_agent_sees_only_their_teams_cases(
    apis: Apis, sessions: SessionFactory, infra: Infra
) -> None:
    ours = await _case(sessions)
    theirs = await _case(sessions, team="enterprise")
    mine = await apis.followup.get("/v1/cases", params={"limit": 500}, headers=infra.bearer(AGENT))
    ids = {item["case_id"] for item in mine.json()["items"]}
    assert str(ours) in ids
    assert str(theirs) not in ids
    assert {item["team"] for item in mine.json()["items"]} == {"customer-success"}
    asked = await apis.followup.get(
        "/v1/cases", params={"team": "enterprise"}, headers=infra.bearer(AGENT)
    )
    assert asked.status_code == 403
    erin = infra.bearer(OTHER_AGENT, "agent")
    assert (await apis.followup.get(f"/v1/cases/{theirs}", headers=erin)).status_code == 200
    assert (await apis.followup.get(f"/v1/cases/{ours}", headers=erin)).status_code == 403
    everyone = await apis.followup.get(
        "/v1/cases", params={"limit": 500}, headers=infra.bearer(ADMIN)
    )
    assert {str(ours), str(theirs)} <= {item["case_id"] for item in everyone.json()["items"]}


async def test_a_teams_group_in_the_token_gives_that_teams_queue(
    apis: Apis, sessions: SessionFactory, infra: Infra
) -> None:
    theirs = await _case(sessions, team="enterprise")
    token = infra.idp.provider.person_token(  # type: ignore[union-attr]
        "newcomer@example.com", role="agent", groups=["enterprise"]
    )
    answer = await apis.followup.get(
        f"/v1/cases/{theirs}", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text


async def test_a_viewer_sees_figures_but_no_customer(
    apis: Apis, sessions: SessionFactory, infra: Infra
) -> None:
    await _case(sessions)
    viewer = infra.bearer(VIEWER)
    figures = await apis.followup.get("/v1/figures", params={"group_by": "team"}, headers=viewer)
    assert figures.status_code == 200
    assert figures.json()["groups"]
    assert "ada@example.com" not in figures.text
    nps = await apis.scoring.get("/v1/nps", headers=viewer)
    assert nps.status_code == 200
    for path in ("/v1/cases", "/v1/do-not-contact/c-1"):
        refused = await apis.followup.get(path, headers=viewer)
        assert refused.status_code == 403
        assert refused.json()["required_role"] == "agent"
        assert "viewer" in refused.json()["detail"]


async def test_a_program_with_client_credentials_gets_its_role(
    apis: Apis, infra: Infra, sessions: SessionFactory
) -> None:
    """Through the provider's token endpoint, as a BI job would."""
    async with httpx.AsyncClient() as http:
        issued = await http.post(
            f"{infra.issuer}/token",
            data={"grant_type": "client_credentials"},
            auth=("bi-dashboard", "bi-dashboard-secret"),
        )
        wrong = await http.post(
            f"{infra.issuer}/token",
            data={"grant_type": "client_credentials"},
            auth=("bi-dashboard", "guess"),
        )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    assert (await apis.scoring.get("/v1/themes", headers=bearer)).status_code == 200
    assert (await apis.followup.get("/v1/cases", headers=bearer)).status_code == 403


# --- owners are team members ------------------------------------------------------------------


async def test_an_owner_who_is_not_a_member_is_422_and_nobody_is_emailed(
    apis: Apis, sessions: SessionFactory, infra: Infra
) -> None:
    case_id = await _case(sessions)
    before = await footprint(sessions, case_id)
    answer = await apis.followup.post(
        f"/v1/cases/{case_id}/assign",
        json={"owner": "anyone@example.org"},
        headers=infra.bearer(LEAD),
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [
        {"field": "owner", "message": "is not a member of the case's team"}
    ]
    assert "alex@example.com" in answer.json()["members"]
    # A member of another team is not one of this case's people either.
    other = await apis.followup.post(
        f"/v1/cases/{case_id}/assign", json={"owner": OTHER_AGENT}, headers=infra.bearer(ADMIN)
    )
    assert other.status_code == 422
    assert await footprint(sessions, case_id) == before


# --- bad credentials --------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def _bad_tokens(infra: Infra, tmp: Path) -> dict[str, str]:
    provider = infra.idp.provider  # type: ignore[union-attr]
    now = int(datetime.now(UTC).timestamp())
    good = provider.person_token(AGENT)
    head, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    stranger = DevIdentityProvider(issuer=infra.issuer, key_file=tmp / "other.pem")
    # The same key, another issuer: only the `iss` check can refuse it.
    elsewhere = DevIdentityProvider(issuer="https://idp.example.org", key_file=provider.key_file)
    # The attack: the provider's public key (anyone can fetch it) used as an HMAC secret.
    jwks = httpx.get(f"{infra.issuer}/jwks").json()["keys"][0]
    public_pem = jwt.PyJWK(jwks).key.public_bytes(  # type: ignore[union-attr]
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    hs_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": provider.kid}).encode())
    hs_signature = _b64(
        hmac.new(public_pem, f"{hs_header}.{payload}".encode(), hashlib.sha256).digest()
    )
    raised = _b64(json.dumps({**claims, "roles": ["admin"]}).encode())
    return {
        "expired": provider.person_token(AGENT, exp=now - 600),
        "not yet valid": provider.person_token(AGENT, nbf=now + 600),
        "another issuer": elsewhere.person_token(AGENT),
        "another audience": provider.person_token(AGENT, aud="someone-else"),
        "unknown key": stranger.person_token(AGENT),
        "alg none": _unsigned(claims, {"alg": "none", "typ": "JWT", "kid": provider.kid}),
        "HS256 with the public key": f"{hs_header}.{payload}.{hs_signature}",
        "tampered": f"{head}.{raised}.{signature}",
        "not a JWT": "not-a-token",
    }


REASONS = {
    "expired": "expired",
    "not yet valid": "not valid yet",
    "another issuer": "another issuer",
    "another audience": "not meant for",
    "unknown key": "no key",
    "alg none": "algorithm 'none'",
    "HS256 with the public key": "algorithm 'HS256'",
    "tampered": "signature",
    "not a JWT": "not a JWT",
}


async def test_every_bad_token_is_401_with_an_rfc6750_challenge_saying_why(
    apis: Apis, infra: Infra, tmp_path: Path
) -> None:
    for case, token in _bad_tokens(infra, tmp_path).items():
        answer = await apis.followup.get("/v1/cases", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, (case, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="npsloop", error="invalid_token"'), challenge
        assert REASONS[case] in challenge, (case, challenge)
        assert REASONS[case] in answer.json()["detail"], (case, answer.text)


async def test_no_token_and_a_malformed_header_are_401(apis: Apis) -> None:
    missing = await apis.followup.get("/v1/cases")
    assert missing.status_code == 401
    # RFC 6750 §3.1: a request with no credential gets no error code.
    assert missing.headers["www-authenticate"] == 'Bearer realm="npsloop"'
    basic = await apis.followup.get("/v1/cases", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401
    assert 'error="invalid_request"' in basic.headers["www-authenticate"]


# --- actors -----------------------------------------------------------------------------------


async def test_the_timeline_and_the_events_name_who_did_each_step(
    apis: Apis, sessions: SessionFactory, infra: Infra
) -> None:
    case_id = await _case(sessions)
    path = f"/v1/cases/{case_id}"
    steps = [
        (AGENT, "assign", {"owner": AGENT}),
        (AGENT, "contacts", {"channel": "phone", "outcome": "reached", "actor": "someone else"}),
        (AGENT, "resolve", {"root_cause": "onboarding"}),
        (LEAD, "close", {}),
    ]
    for person, step, body in steps:
        answer = await apis.followup.post(f"{path}/{step}", json=body, headers=infra.bearer(person))
        assert answer.status_code == 200, answer.text
    case = (await apis.followup.get(path, headers=infra.bearer(LEAD))).json()
    by = {entry["kind"]: entry["by"] for entry in case["timeline"]}
    assert by["opened"] == {"kind": "system", "id": "system", "name": "system", "rule": "detractor"}
    manual = {kind: by[kind] for kind in ("contact", "resolved", "closed")}
    assert manual == {
        "contact": {"kind": "person", "id": subject_of(AGENT), "name": AGENT, "rule": None},
        "resolved": {"kind": "person", "id": subject_of(AGENT), "name": AGENT, "rule": None},
        "closed": {"kind": "person", "id": subject_of(LEAD), "name": LEAD, "rule": None},
    }
    assert [e["actor"] for e in case["timeline"] if e["kind"] == "closed"] == [LEAD]
    # Every nps.cases.v1 event of the case carries its actor.
    async with sessions() as session:
        rows = (
            await session.execute(
                select(followup_tables.outbox).where(
                    followup_tables.outbox.c.topic == "nps.cases.v1"
                )
            )
        ).all()
    events = [
        decode(tuple((n, v.encode()) for n, v in json.loads(row.headers)), row.value)
        for row in rows
    ]
    ours = [e for e in events if getattr(e.data, "case_id", None) == case_id]
    actors = {e.type.split(".")[3]: getattr(e.data, "actor", None) for e in ours}
    assert set(actors) >= {"opened", "assigned", "contact-recorded", "resolved", "closed"}
    assert actors["opened"] == Actor.system("detractor")
    assert actors["contact-recorded"] == Actor(
        kind=ActorKind.PERSON, id=subject_of(AGENT), name=AGENT
    )
    assert actors["closed"] == Actor(kind=ActorKind.PERSON, id=subject_of(LEAD), name=LEAD)
    assert None not in actors.values()


async def test_a_token_signed_before_the_deadline_passes_still_works_within_the_leeway(
    apis: Apis, infra: Infra
) -> None:
    """`exp` 10 s ago is inside the 30 s leeway (clock skew between machines)."""
    provider = infra.idp.provider  # type: ignore[union-attr]
    token = provider.person_token(
        AGENT, exp=int((datetime.now(UTC) - timedelta(seconds=10)).timestamp())
    )
    answer = await apis.followup.get("/v1/policy", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200


def test_notify_webhooks_stay_signature_checked(apis: Apis) -> None:
    """notify's helpdesk webhooks take the helpdesk's signature, not a bearer token (their
    401 without one is in the walk above)."""
    assert apis.documents["notify"]["paths"]
    for item in apis.documents["notify"]["paths"].values():
        for operation in item.values():
            assert "security" not in operation


@pytest.mark.parametrize("person", [VIEWER, AGENT])
async def test_figures_by_owner_name_staff_so_only_leads_and_admins_get_them(
    apis: Apis, sessions: SessionFactory, infra: Infra, person: str
) -> None:
    await _case(sessions)
    for group_by in (["owner"], ["team", "owner"]):
        refused = await apis.followup.get(
            "/v1/figures", params={"group_by": group_by}, headers=infra.bearer(person)
        )
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["required_role"] == "lead"
        assert "name the staff" in refused.json()["detail"]
        assert "@example.com" not in refused.text
    by_team = await apis.followup.get(
        "/v1/figures", params={"group_by": "team"}, headers=infra.bearer(person)
    )
    assert by_team.status_code == 200


@pytest.mark.parametrize("person", [LEAD, ADMIN])
async def test_a_lead_gets_figures_by_team_and_by_owner_in_one_answer(
    apis: Apis, sessions: SessionFactory, infra: Infra, person: str
) -> None:
    case_id = await _case(sessions)
    async with sessions() as session:
        case = await FollowupRepository(session).get_case(case_id)
    assert case is not None
    assert case.owner
    answer = await apis.followup.get(
        "/v1/figures",
        params={"group_by": ["team", "owner"], "source": "access"},
        headers=infra.bearer(person),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["group_by"] == "team,owner"
    groupings = [g["grouping"] for g in body["groups"]]
    assert groupings == sorted(groupings, key=["team", "owner"].index)  # team's rows first
    assert {(g["grouping"], g["group"]) for g in body["groups"]} >= {
        ("team", "customer-success"),
        ("owner", case.owner),
    }
    teams = sum(g["cases"] for g in body["groups"] if g["grouping"] == "team")
    owners = sum(g["cases"] for g in body["groups"] if g["grouping"] == "owner")
    assert teams == owners >= 1
