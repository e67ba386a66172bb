"""Issue #16 §4 in pure logic: the page a passive's email shows, chosen by the comment's themes
from the policy (several themes, none, unknown ones); the policy refusing what cannot work,
with its lines; referral codes (stable, secret-bound); the sweep putting both into the
SendEmail it plans; and recording a referral once per id against the in-memory fake."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from nps_events import Actor, ContentLink, Customer, ReferralLink, Segment, SendEmail
from nps_events.ids import derive_id
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import PolicyError, default_policy_text, parse_policy
from nps_followup.adapters.repository import ActionRow, DueTimer
from nps_followup.domain.cases import ActionState, Case, CaseStatus, TimelineEntry, TimerKind
from nps_followup.domain.content import SHIPPED_THEMES, Content, choose_content
from nps_followup.domain.referrals import CODE, Referral, ReferralCodes, referral_code
from nps_followup.handlers import PolicyInForce, sweep_due_timers
from nps_followup.handlers.referrals import (
    RecordedReferral,
    ReferralIdReused,
    UnknownReferralCode,
    record_referral,
)
from tests.support.followup_fakes import InMemoryTimers

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 5, 12, tzinfo=UTC)
SECRET = b"a-test-secret-of-32-characters!!"

PRICING = Content(title="What each plan includes", url="https://example.com/plans")
ONBOARDING = Content(
    title="Your first week", url="https://example.com/start", summary="Three steps."
)
DEFAULT = Content(title="Tips from our happiest customers", url="https://example.com/tips")
#: As a policy lists them: price first (not the alphabetical order), so it wins over onboarding.
BY_THEME = {"price": PRICING, "onboarding": ONBOARDING}


# --- choosing the page ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("themes", "expected"),
    [
        # Several themes: the policy's order decides, not the comment's (sorted) order.
        (("ease_of_use", "onboarding", "price"), ("price", PRICING)),
        (("onboarding", "support"), ("onboarding", ONBOARDING)),
        # No theme (or no comment): the default.
        ((), (None, DEFAULT)),
        # Themes without content, or that no taxonomy has: the default.
        (("delivery", "warp_drive"), (None, DEFAULT)),
    ],
)
def test_a_passive_gets_the_page_of_the_first_listed_theme_of_their_comment_else_the_default(
    themes: tuple[str, ...], expected: tuple[str | None, Content]
) -> None:
    chosen = choose_content(themes, by_theme=BY_THEME, default=DEFAULT)
    theme, content = expected
    assert chosen == ContentLink(
        theme=theme, title=content.title, url=content.url, summary=content.summary
    )


def test_without_a_default_a_comment_with_no_listed_theme_gets_no_page() -> None:
    assert choose_content(("delivery",), by_theme=BY_THEME, default=None) is None
    assert choose_content((), by_theme={}, default=None) is None


# --- the policy ------------------------------------------------------------------------------

PASSIVE_RULE = """
  - name: passive
    when: {segment: passive}
    actions:
      - kind: email
        template: passive_education
        after: 1 day
    content_by_theme:
      onboarding: {title: Your first week, url: "https://example.com/start"}
      price:
        title: What each plan includes
        url: "https://example.com/plans"
        summary: One line on the plans.
    default_content: {title: Tips, url: "https://example.com/tips"}
"""


def _policy_text(rule: str = PASSIVE_RULE, *, referral: str = "") -> str:
    base = default_policy_text()
    start = base.index("  - name: passive")
    end = base.index("  - name: promoter")
    return base[:start] + rule.lstrip("\n") + "\n" + base[end:] + referral


def test_the_policy_keeps_content_by_theme_in_the_order_written() -> None:
    rule = next(r for r in parse_policy(_policy_text()).rules if r.name == "passive")
    assert list(rule.content_by_theme) == ["onboarding", "price"]
    assert rule.content_by_theme["price"].summary == "One line on the plans."
    assert rule.default_content == Content(title="Tips", url="https://example.com/tips")


def _problems(text: str, **kwargs: frozenset[str]) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, name="p.yaml", **kwargs)
    return caught.value.lines()


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_a_theme_scorings_taxonomy_does_not_have_is_refused_with_its_line() -> None:
    text = _policy_text(PASSIVE_RULE.replace("      price:", "      pricing:"))
    [problem] = _problems(text)
    assert problem.startswith(f"p.yaml:{_line_of(text, 'pricing:')}: ")
    assert "theme 'pricing' is not in scoring's taxonomy" in problem


def test_the_themes_are_those_of_the_taxonomy_in_use() -> None:
    text = _policy_text()
    [problem] = _problems(text, themes=frozenset({"onboarding", "billing"}))
    assert "theme 'price' is not in scoring's taxonomy (billing, onboarding)" in problem


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('"https://example.com/start"', '"javascript:alert(1)"'), "String should match"),
        (("{title: Your first week, ", "{title: '', "), "at least 1 character"),
        (("      onboarding:", "      Onboarding:"), "String should match pattern"),
    ],
)
def test_a_page_that_cannot_be_shown_is_refused_with_its_line(
    change: tuple[str, str], message: str
) -> None:
    text = _policy_text(PASSIVE_RULE.replace(*change))
    [problem] = _problems(text)
    assert f"p.yaml:{_line_of(text, change[1])}:" in problem
    assert message in problem


def test_content_on_a_rule_that_sends_no_email_is_refused() -> None:
    rule = PASSIVE_RULE.replace("kind: email", "kind: sms")
    [problem] = _problems(_policy_text(rule))
    assert "content_by_theme and default_content are shown in emails" in problem


@pytest.mark.parametrize(
    "url",
    ["https://example.com/r/", "ftp://example.com/{code}", "https://example.com/{code}/{code}"],
)
def test_a_referral_url_needs_http_and_one_code(url: str) -> None:
    [problem] = _problems(_policy_text(referral=f'referral: {{url: "{url}"}}\n'))
    assert "referral.url" in problem
    assert "{code} once" in problem


def test_the_shipped_theme_list_is_scorings_shipped_taxonomy() -> None:
    taxonomy = ROOT / "services/scoring/src/nps_scoring/themes.yaml"
    assert frozenset(yaml.safe_load(taxonomy.read_text(encoding="utf-8"))["themes"]) == (
        SHIPPED_THEMES
    )


# --- referral codes --------------------------------------------------------------------------


def test_a_customers_referral_code_is_stable_and_depends_on_the_secret() -> None:
    code = referral_code("cust-42", SECRET)
    assert CODE.match(code)
    assert referral_code("cust-42", SECRET) == code
    assert referral_code("cust-43", SECRET) != code
    assert referral_code("cust-42", SECRET + b"x") != code


def test_the_referral_link_puts_the_code_where_the_program_says() -> None:
    policy = parse_policy(_policy_text(referral='referral: {url: "https://ex.com/?ref={code}"}\n'))
    assert policy.referral is not None
    link = ReferralCodes(policy.referral, SECRET).link_for("cust-42")
    assert link == ReferralLink(
        code=referral_code("cust-42", SECRET),
        url=f"https://ex.com/?ref={referral_code('cust-42', SECRET)}",
    )


# --- the sweep plans the email with both ----------------------------------------------------


def _in_force(referral: bool) -> PolicyInForce:
    program = 'referral: {url: "https://example.com/r/{code}"}\n' if referral else ""
    policy = parse_policy(_policy_text(referral=program))
    codes = ReferralCodes(policy.referral, SECRET) if policy.referral else None
    return PolicyInForce(policy=policy, holidays_for=holidays_for(policy), referrals=codes)


def _automated_case(repo: InMemoryTimers, segment: Segment, themes: tuple[str, ...]) -> Case:
    rule, template = (
        ("passive", "passive_education")
        if segment is Segment.PASSIVE
        else ("promoter", "promoter_thank_you")
    )
    case = Case(
        case_id=uuid.uuid4(),
        response_id=uuid.uuid4(),
        source="typeform",
        survey_id="s-1",
        customer_id="cust-42",
        customer_email="ada@example.com",
        customer_name="Ada",
        customer=Customer(id="cust-42", email="ada@example.com", name="Ada"),
        segment=segment,
        score=8 if segment is Segment.PASSIVE else 10,
        comment="the price is high",
        status=CaseStatus.AUTOMATED,
        opened_at=NOW - timedelta(days=1),
        due_at=None,
        rule=rule,
        themes=themes,
    )
    action = ActionRow(
        uuid.uuid4(), case.case_id, "email", template, None, ActionState.SCHEDULED, False
    )
    due = DueTimer(uuid.uuid4(), case.case_id, TimerKind.ACTION, action.action_id, NOW)
    repo.add(case, [due], [action])
    return case


async def test_the_passive_email_carries_the_page_for_the_comments_theme() -> None:
    repo = InMemoryTimers()
    _automated_case(repo, Segment.PASSIVE, ("price", "support"))
    await sweep_due_timers(repo, now=NOW, policy=_in_force(referral=True), limit=10)
    [email] = [e for e in repo.published if isinstance(e, SendEmail)]
    assert email.content == ContentLink(
        theme="price",
        title="What each plan includes",
        url="https://example.com/plans",
        summary="One line on the plans.",
    )
    assert email.referral is None  # a passive is not asked for referrals
    assert repo.referral_codes == {}


async def test_the_promoter_email_carries_the_customers_referral_link_and_records_it() -> None:
    repo = InMemoryTimers()
    case = _automated_case(repo, Segment.PROMOTER, ())
    await sweep_due_timers(repo, now=NOW, policy=_in_force(referral=True), limit=10)
    [email] = [e for e in repo.published if isinstance(e, SendEmail)]
    code = referral_code("cust-42", SECRET)
    assert email.referral == ReferralLink(code=code, url=f"https://example.com/r/{code}")
    assert email.content is None  # the promoter rule has no content
    assert repo.referral_codes == {code: ("cust-42", case.case_id)}


async def test_without_a_referral_program_the_promoter_email_has_no_link() -> None:
    repo = InMemoryTimers()
    _automated_case(repo, Segment.PROMOTER, ())
    await sweep_due_timers(repo, now=NOW, policy=_in_force(referral=False), limit=10)
    [email] = [e for e in repo.published if isinstance(e, SendEmail)]
    assert email.referral is None
    assert repo.referral_codes == {}


# --- recording a referral ------------------------------------------------------------------


@dataclass
class InMemoryReferrals:
    """The `ReferralRecording` port over dicts."""

    codes: dict[str, tuple[str, uuid.UUID]] = field(default_factory=dict)
    referrals: dict[str, Referral] = field(default_factory=dict)
    timeline: list[tuple[uuid.UUID, TimelineEntry]] = field(default_factory=list)

    async def referral(self, referral_id: str) -> Referral | None:
        return self.referrals.get(referral_id)

    async def referral_code_owner(self, code: str) -> tuple[str, uuid.UUID] | None:
        return self.codes.get(code)

    async def add_referral(self, referral: Referral) -> bool:
        if referral.referral_id in self.referrals:
            return False
        self.referrals[referral.referral_id] = referral
        return True

    async def add_timelines(self, entries: list[tuple[uuid.UUID, TimelineEntry]]) -> None:
        self.timeline += entries


ACTOR = Actor.system("referrals")


async def _record(
    repo: InMemoryReferrals, referral_id: str, code: str, *, reference: str = "acct-9"
) -> RecordedReferral:
    return await record_referral(
        repo,
        referral_id=referral_id,
        code=code,
        referred_at=NOW - timedelta(hours=1),
        reference=reference,
        actor=ACTOR,
        now=NOW,
    )


async def test_a_referral_is_recorded_on_the_promoters_case_once_per_id() -> None:
    case_id = uuid.uuid4()
    code = referral_code("cust-42", SECRET)
    repo = InMemoryReferrals(codes={code: ("cust-42", case_id)})

    first = await _record(repo, "signup-1", code)
    again = await _record(repo, "signup-1", code)

    assert first.new
    assert not again.new
    assert again.referral == first.referral
    [(on_case, entry)] = repo.timeline
    assert (on_case, entry.kind, entry.details["reference"]) == (
        case_id,
        "referral_recorded",
        "acct-9",
    )
    assert entry.entry_id == derive_id(
        "timeline", str(case_id), "referral_recorded", "referral:signup-1"
    )


@pytest.mark.parametrize("code", ["aaaaaaaaaaaaaaaa", "not a code", ""])
async def test_a_code_no_link_carries_is_unknown(code: str) -> None:
    repo = InMemoryReferrals(codes={referral_code("cust-42", SECRET): ("cust-42", uuid.uuid4())})
    with pytest.raises(UnknownReferralCode):
        await _record(repo, "signup-1", code)
    assert repo.referrals == {}
    assert repo.timeline == []


async def test_an_id_reused_for_another_referral_is_refused() -> None:
    code = referral_code("cust-42", SECRET)
    repo = InMemoryReferrals(codes={code: ("cust-42", uuid.uuid4())})
    await _record(repo, "signup-1", code)
    with pytest.raises(ReferralIdReused):
        await _record(repo, "signup-1", code, reference="acct-10")
    assert len(repo.timeline) == 1


def test_a_referral_program_without_its_secret_stops_start_up(tmp_path: Path) -> None:
    from nps_followup.bootstrap import policy_in_force  # noqa: PLC0415 - the composition root
    from nps_followup.config import FollowupSettings  # noqa: PLC0415

    policy = tmp_path / "policy.yaml"
    policy.write_text(_policy_text(referral='referral: {url: "https://ex.com/r/{code}"}\n'))
    with pytest.raises(PolicyError, match="needs FOLLOWUP_REFERRAL_SECRET"):
        policy_in_force(FollowupSettings(policy_file=policy, referral_secret=None))
    armed = policy_in_force(
        FollowupSettings(policy_file=policy, referral_secret=SecretStr(SECRET.decode()))
    )
    assert armed.referrals is not None
    assert armed.referrals.link_for("c-1").code == referral_code("c-1", SECRET)
