"""The read APIs the console's case page, dashboard and policy page ask (issue #14), against
the real database and really signed tokens:

- scoring's score history of a customer: newest first, agent and up, problems on bad input;
- followup's case: the customer's time zone and attributes, and the escalation ladder (the
  next step while nobody reached the customer, every step stopped once someone did);
- followup's policy: each rule's match, contact deadline, team, ladder and messages;
- followup's figures of one team, source, segment or survey, with the cases contacted in time.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from nps_events import Actor, ContactOutcome
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.entrypoints import api as followup_api
from nps_followup.handlers import record_contact
from nps_kit.access import Access
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, unit_of_work
from nps_kit.http import create_app
from nps_scoring.adapters.taxonomy import load_taxonomy
from nps_scoring.domain.themes import KeywordThemeClassifier
from nps_scoring.entrypoints import api as scoring_api
from tests.integration.test_api_access import POLICY
from tests.integration.test_scoring import response, score
from tests.support.cases import detractor_case
from tests.support.infra import Infra

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # a Tuesday, 12:00 in London
AGENT = "alex@example.com"
VIEWER = "analyst@example.com"
LEAD = "cs-lead@example.com"


@dataclass
class Apis:
    scoring: httpx.AsyncClient
    followup: httpx.AsyncClient


@pytest.fixture(scope="module")
async def apis(sessions: SessionFactory, access: Access) -> AsyncIterator[Apis]:
    scoring = create_app(title="scoring", description="", version="test", readiness={})
    scoring.include_router(
        scoring_api.router(
            sessions=sessions,
            timezone="UTC",
            labels={},
            access=access,
            classifier=KeywordThemeClassifier(load_taxonomy()),
        )
    )
    followup = create_app(title="followup", description="", version="test", readiness={})
    followup.include_router(
        followup_api.router(sessions=sessions, clock=FrozenClock(NOW), policy=POLICY, access=access)
    )
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=scoring), base_url="http://s") as s,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=followup), base_url="http://f") as f,
    ):
        yield Apis(s, f)


# --- scoring: the customer's score history --------------------------------------------------


async def test_an_agent_reads_every_score_a_customer_gave_newest_first(
    apis: Apis, sessions: SessionFactory, infra: Infra
) -> None:
    await score(
        sessions,
        response("hist-ada", "hist-ada-1", 10, days=0, comment="Love it"),
        response("hist-ada", "hist-ada-2", 3, days=30, comment="Exports broke"),
        response("hist-ada", "hist-ada-3", 7, days=60),
        response("hist-bob", "hist-bob-1", 9, days=10),
    )
    answer = await apis.scoring.get("/v1/customers/hist-ada/responses", headers=infra.bearer(AGENT))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(r["score"], r["segment"]) for r in body["responses"]] == [
        (7, "passive"),
        (3, "detractor"),
        (10, "promoter"),
    ]
    assert body["responses"][1]["comment"] == "Exports broke"
    assert body["responses"][1]["transition"] == "churn_risk"
    # A limit keeps the newest.
    latest = await apis.scoring.get(
        "/v1/customers/hist-ada/responses", params={"limit": 1}, headers=infra.bearer(AGENT)
    )
    assert [r["score"] for r in latest.json()["responses"]] == [7]


async def test_the_history_says_where_in_each_comment_its_themes_are(
    apis: Apis, sessions: SessionFactory, infra: Infra
) -> None:
    """Spans into the comment as written (accents, a dash, a euro sign before them), found on
    read; the console wraps them in <mark>."""
    comment = "Entrega atrasada — a fatura de €40 veio errada, São Paulo"
    await score(
        sessions,
        response("spans-ana", "spans-ana-1", 2, days=0, comment=comment),
        response("spans-ana", "spans-ana-2", 9, days=5),
    )
    answer = await apis.scoring.get(
        "/v1/customers/spans-ana/responses", headers=infra.bearer(AGENT)
    )
    assert answer.status_code == 200, answer.text
    without, commented = answer.json()["responses"]
    assert without["comment"] is None
    assert without["theme_spans"] == []
    assert commented["comment"] == comment
    spans = commented["theme_spans"]
    assert [(comment[s["start"] : s["end"]], s["theme"]) for s in spans] == [
        ("Entrega", "delivery"),
        ("atrasada", "delivery"),
        ("fatura", "price"),
    ]
    assert sorted({s["theme"] for s in spans}) == commented["themes"]


async def test_a_viewer_is_refused_a_customers_scores(apis: Apis, infra: Infra) -> None:
    refused = await apis.scoring.get(
        "/v1/customers/hist-ada/responses", headers=infra.bearer(VIEWER)
    )
    assert refused.status_code == 403
    assert refused.json()["required_role"] == "agent"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/customers/hist-ada/responses", {"limit": "0"}, "limit"),
        ("/v1/customers/hist-ada/responses", {"limit": "201"}, "limit"),
        ("/v1/customers/hist-ada/responses", {"limit": "many"}, "limit"),
        ("/v1/customers/a%00b/responses", {}, "customer_id"),
    ],
)
async def test_a_bad_history_question_is_a_problem_naming_the_field(
    apis: Apis, infra: Infra, path: str, params: dict[str, str], field: str
) -> None:
    answer = await apis.scoring.get(path, params=params, headers=infra.bearer(AGENT))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in answer.text


# --- followup: the case page's customer and ladder ------------------------------------------


async def test_the_case_shows_the_customers_time_zone_attributes_and_ladder(
    apis: Apis, sessions: SessionFactory, infra: Infra
) -> None:
    case = await detractor_case(
        sessions,
        POLICY,
        now=NOW,
        source="page",
        attributes={"plan": "pro", "region": "eu"},
        timezone="Asia/Tokyo",
    )
    answer = await apis.followup.get(f"/v1/cases/{case.case_id}", headers=infra.bearer(AGENT))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["customer"]["timezone"] == "Asia/Tokyo"
    assert body["customer"]["attributes"] == {"plan": "pro", "region": "eu"}
    ladder = body["ladder"]
    # The shipped rule: remind 4 business hours before the deadline (2 business days), tell
    # the lead at it, and the second level a business day later.
    assert [(r["step"], r["role"], r["state"]) for r in ladder] == [
        ("reminder", "owner", "next"),
        ("escalation", "lead", "later"),
        ("second_level", "second_level", "later"),
    ]
    assert [datetime.fromisoformat(r["at"]) for r in ladder] == [
        datetime.fromisoformat(body["remind_at"]),
        datetime.fromisoformat(body["due_at"]),
        datetime.fromisoformat(body["second_level_at"]),
    ]
    assert ladder[0]["recipient"] == body["owner"]
    assert ladder[1]["recipient"] == "cs-lead@example.com"
    assert ladder[2]["recipient"] == "head-of-cx@example.com"
    # The list leaves the ladder out (its timeline is not read there).
    listed = await apis.followup.get(
        "/v1/cases", params={"customer_id": case.customer_id}, headers=infra.bearer(AGENT)
    )
    assert listed.json()["items"][0]["ladder"] == []


async def test_reaching_the_customer_stops_the_ladder(
    apis: Apis, sessions: SessionFactory, infra: Infra
) -> None:
    case = await detractor_case(sessions, POLICY, now=NOW, source="page")
    async with unit_of_work(sessions) as session:
        await record_contact(
            FollowupRepository(session),
            case.case_id,
            channel="phone",
            outcome=ContactOutcome.REACHED,
            note=None,
            actor=Actor.system("test"),
            now=NOW + timedelta(hours=1),
        )
    body = (
        await apis.followup.get(f"/v1/cases/{case.case_id}", headers=infra.bearer(AGENT))
    ).json()
    assert {r["state"] for r in body["ladder"]} == {"stopped"}


# --- followup: the policy as a table of rules -----------------------------------------------


async def test_the_policy_lists_each_rules_match_deadline_ladder_and_messages(
    apis: Apis, infra: Infra
) -> None:
    answer = await apis.followup.get("/v1/policy", headers=infra.bearer(VIEWER))
    assert answer.status_code == 200, answer.text
    rules = {r["name"]: r for r in answer.json()["rules"]}
    assert list(rules) == [r.name for r in POLICY.policy.rules]
    detractor = rules["detractor"]
    assert detractor["when"] == {
        "segment": "detractor",
        "source": None,
        "survey": None,
        "attributes": {},
    }
    assert detractor["case"]["team"] == "customer-success"
    assert detractor["case"]["owner"] == "account_owner"
    assert detractor["case"]["contact_within"] == "2 business days"
    assert detractor["case"]["ladder"] == [
        {"step": "reminder", "when": "4 business hours before the deadline", "tells": "owner"},
        {"step": "escalation", "when": "at the deadline", "tells": "lead"},
        {
            "step": "second_level",
            "when": "1 business day after the deadline",
            "tells": "second_level",
        },
    ]
    assert [(a["kind"], a["template"], a["priority"]) for a in detractor["actions"]] == [
        ("email", "detractor_acknowledgement", None),
        ("ticket", None, "high"),
    ]
    enterprise = rules["enterprise-detractor"]
    assert enterprise["when"]["attributes"] == {"plan": ["enterprise"]}
    assert enterprise["specificity"] == 1
    assert enterprise["case"]["team"] == "enterprise"
    assert rules["passive"]["case"] is None
    assert rules["passive"]["actions"][0]["after"] == "1 day"
    # Rules name teams and roles, never a person.
    assert "@" not in answer.text


# --- followup: figures of one team, source, segment or survey ------------------------------


async def test_figures_of_one_team_count_only_its_cases(
    apis: Apis, sessions: SessionFactory, infra: Infra
) -> None:
    opened = NOW + timedelta(days=300)  # a day no other test of this module opens cases on
    for plan, survey in (("enterprise", "s-1"), ("enterprise", "s-2"), ("pro", "s-2")):
        await detractor_case(
            sessions,
            POLICY,
            now=opened,
            source="figures",
            attributes={"plan": plan},
            survey_id=survey,
        )
    window = {"start": opened.isoformat(), "end": (opened + timedelta(hours=1)).isoformat()}

    async def owners(**only: str) -> dict[str, int]:
        answer = await apis.followup.get(
            "/v1/figures",
            params={**window, "group_by": "owner", **only},
            headers=infra.bearer(LEAD),  # figures by owner name staff: leads and admins
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["filter"] == only
        return {g["group"]: g["cases"] for g in answer.json()["groups"]}

    assert sum((await owners()).values()) == 3
    assert sum((await owners(team="enterprise")).values()) == 2
    assert await owners(team="enterprise") == {"erin@example.com": 2}
    assert sum((await owners(source="figures", segment="detractor")).values()) == 3
    assert await owners(segment="promoter") == {}
    assert await owners(source="elsewhere") == {}
    assert sum((await owners(survey_id="s-2")).values()) == 2
    assert await owners(survey_id="s-2", team="enterprise") == {"erin@example.com": 1}
    assert await owners(survey_id="s-3") == {}


async def test_figures_count_the_cases_contacted_within_their_deadline(
    apis: Apis, sessions: SessionFactory, infra: Infra
) -> None:
    opened = NOW + timedelta(days=400)
    cases = [
        await detractor_case(sessions, POLICY, now=opened, source="sla", attributes={"plan": "x"})
        for _ in range(3)
    ]
    # One reached within the hour, one long after its deadline, one never.
    for case, after in ((cases[0], timedelta(hours=1)), (cases[1], timedelta(days=30))):
        async with unit_of_work(sessions) as session:
            await record_contact(
                FollowupRepository(session),
                case.case_id,
                channel="phone",
                outcome=ContactOutcome.REACHED,
                note=None,
                actor=Actor.system("test"),
                now=opened + after,
            )
    answer = await apis.followup.get(
        "/v1/figures",
        params={"source": "sla", "start": opened.isoformat()},
        headers=infra.bearer(VIEWER),
    )
    [all_] = answer.json()["groups"]
    assert (all_["cases"], all_["contacted"], all_["contacted_in_time"]) == (3, 2, 1)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"segment": "grumpy"}, "segment"),
        ({"team": "a\u0000b"}, "team"),
        ({"team": "x" * 101}, "team"),
        ({"survey_id": "s\u0007"}, "survey_id"),
        ({"survey_id": "s" * 201}, "survey_id"),
    ],
)
async def test_a_bad_figures_filter_is_a_problem_naming_the_field(
    apis: Apis, infra: Infra, params: dict[str, str], field: str
) -> None:
    answer = await apis.followup.get("/v1/figures", params=params, headers=infra.bearer(VIEWER))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in answer.text
