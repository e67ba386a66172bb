"""Each service's use cases against the real database (and the real SMTP sink for notify):
idempotent on event ids, never dispatching an action twice."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import create_async_engine

from nps_events import (
    ActionResultReported,
    ActionStatus,
    Channel,
    Customer,
    NotifyStaff,
    ResponseScored,
    Segment,
    SendEmail,
)
from nps_followup.adapters import tables as followup_tables
from nps_followup.adapters.calendars import holidays_for
from nps_followup.adapters.policy_file import default_policy_text, parse_policy
from nps_followup.adapters.repository import FollowupRepository
from nps_followup.handlers import PolicyInForce, open_cases, record_action_results
from nps_kit.clock import FrozenClock
from nps_kit.db import SessionFactory, session_factory, unit_of_work
from nps_notify.adapters import tables as notify_tables
from nps_notify.adapters.email import SmtpEmailChannel, TemplateRenderer
from nps_notify.adapters.repository import ledger_in
from nps_notify.config import SmtpSettings
from nps_notify.domain.dispatch import DispatchState
from nps_notify.handlers import Dispatcher, email_job
from nps_scoring.adapters import tables as scoring_tables
from nps_scoring.adapters.repository import ScoringRepository
from nps_scoring.adapters.taxonomy import load_taxonomy
from nps_scoring.domain.themes import KeywordThemeClassifier
from nps_scoring.handlers import score_responses
from tests.integration.kafka_helpers import NOW, a_response
from tests.support.infra import Infra

_DEFAULT = parse_policy(default_policy_text())
POLICY = PolicyInForce(policy=_DEFAULT, holidays_for=holidays_for(_DEFAULT))
THEMES = KeywordThemeClassifier(load_taxonomy())


async def _count(sessions: SessionFactory, table: object, *where: object) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(table)  # type: ignore[arg-type]
        for clause in where:
            query = query.where(clause)  # type: ignore[arg-type]
        return int(await session.scalar(query) or 0)


async def test_scoring_processes_a_repeated_event_once(sessions: SessionFactory) -> None:
    response = a_response(score=4)
    async with unit_of_work(sessions) as session:
        first = await score_responses(
            ScoringRepository(session), [response, response], now=NOW, classifier=THEMES
        )
    async with unit_of_work(sessions) as session:
        again = await score_responses(
            ScoringRepository(session),
            [response],
            now=NOW + timedelta(minutes=1),
            classifier=THEMES,
        )
    assert [s.segment for s in first] == [Segment.DETRACTOR]
    assert again == []
    rid = response.response_id
    assert (
        await _count(
            sessions, scoring_tables.responses, scoring_tables.responses.c.response_id == rid
        )
        == 1
    )
    assert await _count(sessions, scoring_tables.outbox) == 1


def _scored(customer: str, score: int = 2) -> ResponseScored:
    response = a_response(customer_id=customer, score=score)
    return ResponseScored(
        response_id=response.response_id,
        source=response.source,
        survey_id=response.survey_id,
        customer=response.customer,
        score=score,
        segment=Segment.DETRACTOR if score <= 6 else Segment.PROMOTER,
        comment=response.comment,
        responded_at=NOW,
        scored_at=NOW,
        received_event_id=response.event_id(),
    )


async def test_followup_opens_one_case_per_response_however_often_it_arrives(
    sessions: SessionFactory,
) -> None:
    detractor, promoter = _scored("c-d"), _scored("c-p", score=10)
    policy = POLICY
    for _ in range(2):
        async with unit_of_work(sessions) as session:
            await open_cases(
                FollowupRepository(session),
                [detractor, promoter, detractor],
                now=NOW,
                policy=policy,
            )
    async with sessions() as session:
        cases = await FollowupRepository(session).list_cases(
            customer_id=None, status=None, limit=10, offset=0
        )
    [case] = [c for c in cases if c.response_id == detractor.response_id]
    assert case.due_at == NOW + timedelta(days=2)  # a Tuesday: Thursday, same time
    assert sorted((a.channel, a.state.value) for a in case.actions) == [
        ("email", "planned"),
        ("staff", "planned"),  # the owner's assignment notice
        ("ticket", "planned"),
    ]
    # The promoter's thank-you waits a day, on a case nobody has to work.
    [promoter_case] = [c for c in cases if c.customer_id == "c-p"]
    assert promoter_case.status.value == "automated"
    assert [(a.template, a.state.value) for a in promoter_case.actions] == [
        ("promoter_thank_you", "scheduled")
    ]
    # CaseOpened, CaseAssigned, the owner's NotifyStaff, SendEmail and CreateTicket queued
    # once, not twice.
    assert await _count(sessions, followup_tables.outbox) == 5


async def test_followup_records_results_and_reports_unknown_actions(
    sessions: SessionFactory,
) -> None:
    scored = _scored("c-r")
    async with unit_of_work(sessions) as session:
        [case] = await open_cases(FollowupRepository(session), [scored], now=NOW, policy=POLICY)
    [action] = [a for a in case.actions if a.channel == "email"]

    def result(action_id: uuid.UUID) -> ActionResultReported:
        return ActionResultReported(
            action_id=action_id,
            case_id=case.case_id,
            customer_id="c-r",
            channel=Channel.EMAIL,
            status=ActionStatus.SENT,
            provider_message_id="<m@x>",
            occurred_at=NOW,
        )

    stray = result(uuid.uuid4())
    async with unit_of_work(sessions) as session:
        unknown = await record_action_results(
            FollowupRepository(session), [result(action.action_id), stray], now=NOW
        )
    assert unknown == [stray.event_id()]
    async with sessions() as session:
        found = await FollowupRepository(session).get_case(case.case_id)
    assert found is not None
    assert sorted((a.channel, a.state.value, a.provider_message_id) for a in found.actions) == [
        ("email", "sent", "<m@x>"),
        ("staff", "planned", None),
        ("ticket", "planned", None),
    ]


async def test_followup_keeps_the_later_of_two_results_of_one_action_in_a_batch(
    sessions: SessionFactory,
) -> None:
    """A batch's outcomes are written in one statement; as row by row, the later stands."""
    async with unit_of_work(sessions) as session:
        [case] = await open_cases(
            FollowupRepository(session), [_scored("c-r2")], now=NOW, policy=POLICY
        )
    [ticket] = [a for a in case.actions if a.channel == "ticket"]

    def result(status: ActionStatus, **fields: str) -> ActionResultReported:
        return ActionResultReported(
            action_id=ticket.action_id,
            case_id=case.case_id,
            customer_id="c-r2",
            channel=Channel.TICKET,
            status=status,
            occurred_at=NOW,
            **fields,
        )

    failed = result(ActionStatus.FAILED, reason="helpdesk said 503")
    sent = result(ActionStatus.SENT, provider_message_id="T-1")
    async with unit_of_work(sessions) as session:
        unknown = await record_action_results(
            FollowupRepository(session), [failed, sent, failed], now=NOW
        )
    assert unknown == []
    async with sessions() as session:
        found = await FollowupRepository(session).get_case(case.case_id)
    assert found is not None
    assert [
        (a.state.value, a.provider_message_id, a.reason)
        for a in found.actions
        if a.channel == "ticket"
    ] == [("sent", "T-1", None)]


def _send_email(customer: str) -> SendEmail:
    return SendEmail(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=Customer(id=customer, email=f"{customer}@example.com", name="Lin"),
        template="detractor_apology",
        score=1,
        comment="never again",
        requested_at=datetime(2026, 11, 24, tzinfo=UTC),
    )


def _dispatcher(sessions: SessionFactory, email: SmtpEmailChannel | None) -> Dispatcher:
    return Dispatcher(
        ledger=ledger_in(sessions),
        channels={"email": email} if email is not None else {},
        clock=FrozenClock(NOW),
        concurrency=2,
        case_url="http://cs.example.com/cases/{case_id}",
    )


def _mails_to(infra: Infra, customer: str) -> int:
    return sum(1 for m in infra.mail.messages() if f"{customer}@example.com" in str(m["To"]))


async def test_notify_never_sends_an_action_twice(sessions: SessionFactory, infra: Infra) -> None:
    customer = f"n-{uuid.uuid4().hex[:6]}"
    action = _send_email(customer)
    channel = SmtpEmailChannel(
        SmtpSettings(port=infra.smtp_port), renderer=TemplateRenderer(), attempts=1
    )
    first = await _dispatcher(sessions, channel).dispatch([action, action])
    again = await _dispatcher(sessions, channel).dispatch([action])
    assert first[action.action_id].state is DispatchState.SENT
    assert again == {}
    assert _mails_to(infra, customer) == 1
    assert await _count(sessions, notify_tables.outbox) >= 1


async def test_notify_writes_a_slices_outcomes_with_the_next_slices_sending_mark(
    database_url: str, sessions: SessionFactory, infra: Infra
) -> None:
    """Five emails in slices of two: each slice's outcomes go in the statement that marks the
    next slice `sending`, and every email ends `sent`, once, with its result queued."""
    customers = [f"n-{uuid.uuid4().hex[:6]}" for _ in range(5)]
    actions = [_send_email(c) for c in customers]
    channel = SmtpEmailChannel(
        SmtpSettings(port=infra.smtp_port), renderer=TemplateRenderer(), attempts=1
    )
    # Every statement on the ledger's table, whichever way it goes: through the session
    # (SQLAlchemy's event) or on the transaction's asyncpg connection (asyncpg's query
    # logger), on an engine of this test's own, so that no other test's statement is counted.
    statements: list[str] = []
    counted = create_async_engine(database_url)

    def connected(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.driver_connection.add_query_logger(
            lambda record: statements.append(record.query)
        )

    def executed(*args: object) -> None:
        statements.append(str(args[2]))  # the statement's text

    event.listen(counted.sync_engine, "connect", connected)
    event.listen(counted.sync_engine, "before_cursor_execute", executed)
    try:
        outcomes = await _dispatcher(session_factory(counted), channel).dispatch(actions)
    finally:
        await counted.dispose()
        await channel.aclose()
    assert {o.state for o in outcomes.values()} == {DispatchState.SENT}
    # Slices of 2, 2 and 1: `sending` for the first; then, twice, one statement with the
    # outcomes and the next `sending`; the last slice's outcomes on their own.
    ledger = [s for s in statements if "notify.dispatches" in s]
    assert len(ledger) == 1 + 1 + 1 + 1, ledger
    ids = [a.action_id for a in actions]
    async with sessions() as session:
        queued = (await session.execute(select(notify_tables.outbox.c.value))).scalars().all()
    reported = [ActionResultReported.model_validate_json(value) for value in queued]
    assert sorted(r.action_id for r in reported if r.action_id in set(ids)) == sorted(ids)
    async with sessions() as session:
        rows = (
            await session.execute(
                select(
                    notify_tables.dispatches.c.state, notify_tables.dispatches.c.provider_message_id
                ).where(notify_tables.dispatches.c.action_id.in_(ids))
            )
        ).all()
    assert sorted(r.state for r in rows) == ["sent"] * 5
    assert all(r.provider_message_id for r in rows)
    assert [_mails_to(infra, c) for c in customers] == [1] * 5


async def test_notify_ledger_finishes_a_parked_action_in_the_next_slices_statement(
    sessions: SessionFactory,
) -> None:
    """The outcomes written with `begin_dispatches(finishing=…)` are what `finish_dispatches`
    writes: the state, the provider's id, the reason, and the action leaves `parked`."""
    from nps_notify.adapters.repository import NotifyRepository  # noqa: PLC0415
    from nps_notify.domain.dispatch import Outcome  # noqa: PLC0415

    parked, failed, following = (_send_email(f"n-{uuid.uuid4().hex[:6]}") for _ in range(3))
    async with unit_of_work(sessions) as session:
        repo = NotifyRepository(session)
        await repo.begin_dispatches(
            [email_job(parked, case_url="-"), email_job(failed, case_url="-")], now=NOW
        )
        await repo.defer(
            parked, channel="email", reason="429", not_before=NOW + timedelta(minutes=1), now=NOW
        )
    async with unit_of_work(sessions) as session:
        previous = await NotifyRepository(session).begin_dispatches(
            [email_job(following, case_url="-")],
            now=NOW,
            finishing={
                parked.action_id: Outcome(DispatchState.SENT, provider_message_id="<p@x>"),
                failed.action_id: Outcome(DispatchState.FAILED, reason="550 no such user"),
            },
        )
    assert previous == {following.action_id: None}
    dispatches = notify_tables.dispatches
    async with sessions() as session:
        rows = {
            r.action_id: (r.state, r.provider_message_id, r.reason)
            for r in await session.execute(
                select(
                    dispatches.c.action_id,
                    dispatches.c.state,
                    dispatches.c.provider_message_id,
                    dispatches.c.reason,
                ).where(
                    dispatches.c.action_id.in_(
                        [parked.action_id, failed.action_id, following.action_id]
                    )
                )
            )
        }
    assert rows == {
        parked.action_id: ("sent", "<p@x>", None),
        failed.action_id: ("failed", None, "550 no such user"),
        following.action_id: ("sending", None, None),
    }
    assert (
        await _count(
            sessions, notify_tables.parked, notify_tables.parked.c.action_id == parked.action_id
        )
        == 0
    )


async def test_notify_reports_an_interrupted_send_as_unknown_and_does_not_resend(
    sessions: SessionFactory, infra: Infra
) -> None:
    customer = f"n-{uuid.uuid4().hex[:6]}"
    action = _send_email(customer)
    # The ledger says `sending`: a notify died between recording and the provider's answer.
    async with unit_of_work(sessions) as session:
        from nps_notify.adapters.repository import NotifyRepository  # noqa: PLC0415

        await NotifyRepository(session).begin_dispatches([email_job(action, case_url="-")], now=NOW)
    channel = SmtpEmailChannel(
        SmtpSettings(port=infra.smtp_port), renderer=TemplateRenderer(), attempts=1
    )
    outcomes = await _dispatcher(sessions, channel).dispatch([action])
    assert outcomes[action.action_id].state is DispatchState.UNKNOWN
    assert _mails_to(infra, customer) == 0


async def test_notify_reports_an_unreachable_smtp_server_as_failed(
    sessions: SessionFactory,
) -> None:
    action = _send_email("n-down")
    channel = SmtpEmailChannel(
        SmtpSettings(port=1, timeout_seconds=1), renderer=TemplateRenderer(), attempts=1
    )
    outcomes = await _dispatcher(sessions, channel).dispatch([action])
    outcome = outcomes[action.action_id]
    assert outcome.state is DispatchState.FAILED
    assert outcome.reason is not None
    assert outcome.reason.startswith("SMTP: ")


async def test_scoring_stores_an_update_as_the_next_revision_of_the_response(
    sessions: SessionFactory,
) -> None:
    first = a_response(score=9, provider_id=f"upd-{uuid.uuid4()}")
    first = first.model_copy(update={"comment": None})
    update = first.model_copy(update={"score": 4, "comment": "the comment came later"})
    again = update.model_copy(update={"comment": "edited once more"})
    async with unit_of_work(sessions) as session:
        [v1] = await score_responses(
            ScoringRepository(session), [first], now=NOW, classifier=THEMES
        )
    async with unit_of_work(sessions) as session:
        v2, v3 = await score_responses(
            ScoringRepository(session), [update, again, update], now=NOW, classifier=THEMES
        )
    assert (v1.revision, v1.segment, v1.comment) == (1, Segment.PROMOTER, None)
    assert (v2.revision, v2.segment, v2.comment) == (2, Segment.DETRACTOR, "the comment came later")
    assert (v3.revision, v3.comment) == (3, "edited once more")
    assert len({v1.event_id(), v2.event_id(), v3.event_id()}) == 3
    async with sessions() as session:
        row = (
            await session.execute(
                select(scoring_tables.responses).where(
                    scoring_tables.responses.c.response_id == first.response_id
                )
            )
        ).one()
    assert (row.score, row.comment, row.revision) == (4, "edited once more", 3)


async def test_a_late_comment_lands_on_the_existing_case(sessions: SessionFactory) -> None:
    scored = _scored("c-late").model_copy(update={"comment": None})
    late = scored.model_copy(
        update={
            "comment": "it crashed on login",
            "themes": ["reliability"],
            "revision": 2,
            "received_event_id": uuid.uuid4(),
        }
    )
    policy = POLICY
    async with unit_of_work(sessions) as session:
        [case] = await open_cases(FollowupRepository(session), [scored], now=NOW, policy=policy)
    async with unit_of_work(sessions) as session:
        opened = await open_cases(FollowupRepository(session), [late], now=NOW, policy=policy)
    assert opened == []
    async with sessions() as session:
        cases = await FollowupRepository(session).list_cases(
            customer_id="c-late", status=None, limit=10, offset=0
        )
    assert [(c.case_id, c.comment, c.themes, len(c.actions)) for c in cases] == [
        (case.case_id, "it crashed on login", ("reliability",), 3)  # email, ticket, notice
    ]


async def test_notify_answers_an_action_it_has_no_channel_for_with_a_failed_result(
    sessions: SessionFactory,
) -> None:
    from nps_events import CreateTicket, SendSms, TicketPriority  # noqa: PLC0415

    case_id = uuid.uuid4()
    customer = Customer(id="n-unsupported", phone="+33612345678")
    actions = [
        SendSms(
            action_id=uuid.uuid4(),
            case_id=case_id,
            customer=customer,
            template="detractor_acknowledgement",
            requested_at=NOW,
        ),
        CreateTicket(
            action_id=uuid.uuid4(),
            case_id=case_id,
            customer=customer,
            priority=TicketPriority.HIGH,
            title="NPS detractor",
            score=2,
            segment=Segment.DETRACTOR,
            requested_at=NOW,
        ),
    ]
    assert await _dispatcher(sessions, None).dispatch(actions) == {}
    async with sessions() as session:
        rows = (await session.execute(select(notify_tables.outbox))).all()
    results = [
        ActionResultReported.model_validate_json(row.value)
        for row in rows
        if ActionResultReported.model_validate_json(row.value).case_id == case_id
    ]
    assert sorted((r.channel.value, r.status.value, r.reason) for r in results) == [
        ("sms", "failed", "no sms channel is configured"),
        ("ticket", "failed", "no ticket channel is configured"),
    ]
    assert {r.action_id for r in results} == {a.event_id() for a in actions}


async def test_notify_emails_a_staff_notice_to_the_escalation_recipient(
    sessions: SessionFactory, infra: Infra
) -> None:
    from nps_events import StaffReason  # noqa: PLC0415

    lead = f"lead-{uuid.uuid4().hex[:6]}"
    notice = NotifyStaff(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id="c-esc",
        recipient=f"{lead}@example.com",
        role="lead",
        reason=StaffReason.ESCALATION,
        level=1,
        segment=Segment.DETRACTOR,
        score=2,
        requested_at=NOW,
    )
    channel = SmtpEmailChannel(
        SmtpSettings(port=infra.smtp_port), renderer=TemplateRenderer(), attempts=1
    )
    outcomes = await _dispatcher(sessions, channel).dispatch([notice])
    assert outcomes[notice.action_id].state is DispatchState.SENT
    [mail] = [m for m in infra.mail.messages() if f"{lead}@example.com" in str(m["To"])]
    assert str(mail["Subject"]).startswith("Escalation (level 1)")
    assert (
        f"http://cs.example.com/cases/{notice.case_id}" in mail.get_body(("plain",)).get_content()
    )  # type: ignore[union-attr]
    async with sessions() as session:
        rows = (await session.execute(select(notify_tables.outbox))).all()
    [result] = [
        r
        for r in (ActionResultReported.model_validate_json(row.value) for row in rows)
        if r.action_id == notice.action_id
    ]
    assert (result.channel.value, result.status.value) == ("staff", "sent")
