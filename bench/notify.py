"""notify's dispatch throughput, to the local SMTP sink and to a local HTTP fake of a provider
(the fake Twilio of the tests, served by uvicorn over real HTTP), and what the dispatch ledger
costs on top of the channel alone.

For each channel, N actions go through it twice:
(Channels: a customer's email, a staff notice by email (since issue #20's fourth session: the
pipeline's second email per detractor, its deadline in words), an SMS, and since issue #20's
fifth session a helpdesk ticket to the fake Zendesk of the tests (the default policy's third
action per detractor), each fake in a process of its own.)
- the channel alone: `channel.send(job)`, `--concurrency` (`NOTIFY_SEND_CONCURRENCY`, 16; 8
  before issue #20's fourth session) at a time;
- the dispatcher: the same through `Dispatcher.dispatch` in batches of `--batch` (500: what
  one consumer poll hands it in bulk; 1: a steady stream, one action per poll), with the
  ledger written with each slice of sends and the outbox row of each result, on an embedded
  PostgreSQL.
Beside each rate, the CPU this process spent per action (`time.process_time`): the sender's
alone; of it, what the ledger's transactions took (the process's CPU while one is open: no
send is in flight meanwhile). The SMTP sink and the fake Twilio run in processes of their own
(`--sink in-process` and `--fake-in-process` put them back in threads of this one, as the bench
had them before 2026-12-05 and 2026-12-06). The sink is Postfix's `smtp-sink` when installed,
else aiosmtpd (`--sink`; bench/sinks.py says what each costs). smtp-sink offers PIPELINING, so
the channel sends `MAIL`, `RCPT` and `DATA` in one write to it (`--no-pipelining`: one command
at a time, `SMTP_PIPELINING=false`); aiosmtpd does not offer it.

The last columns count the statements (without `BEGIN` and `COMMIT`) and the transactions the
ledger ran (the dispatcher's units of work), per 100 actions, the CPU the PostgreSQL cluster
spent per action through the dispatcher (its processes' utime + stime, from /proc), the CPU
the sink's or the fake's process spent per action through the dispatcher (from /proc), and the
share of the dispatch's wall time spent in ledger transactions (the rest is the sends).

    .venv/bin/python bench/notify.py --actions 2000
    .venv/bin/python bench/notify.py --actions 500 --batch 1
    .venv/bin/python bench/notify.py --actions 2000 --only ticket,sms --repeat 10  # to profile
"""

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support's fakes

from sinks import default_sink, start_fake_provider, start_mail_sink
from sqlalchemy import event

from nps_events import (
    CreateTicket,
    Customer,
    Event,
    NotifyStaff,
    Segment,
    SendEmail,
    SendSms,
    StaffReason,
    TicketPriority,
)
from nps_kit.clock import SystemClock
from nps_kit.db import create_engine, session_factory
from nps_kit.devstack import EmbeddedPostgres, MailSink, free_port
from nps_kit.devstack.process import stop_process
from nps_kit.logging import configure_logging
from nps_kit.migrations import upgrade
from nps_kit.settings import DatabaseSettings, LogSettings
from nps_notify.adapters.email import SmtpEmailChannel, TemplateRenderer
from nps_notify.adapters.repository import ledger_in
from nps_notify.adapters.sms import TwilioSmsChannel
from nps_notify.adapters.tickets import ZendeskTicketChannel
from nps_notify.config import SmtpSettings, TwilioSettings, ZendeskSettings
from nps_notify.handlers import Dispatcher, email_job, sms_job, ticket_job
from tests.support.fake_twilio import FakeTwilio
from tests.support.fake_zendesk import FakeZendesk
from tests.support.serve import served

NOW = datetime(2026, 11, 25, tzinfo=UTC)
CONCURRENCY = 16  # NOTIFY_SEND_CONCURRENCY's default


def _email(i: int) -> SendEmail:
    customer = Customer(id=f"b{i}", email=f"b{i}@example.com", name="Ada")
    return SendEmail(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=customer,
        template="detractor_apology",
        score=2,
        comment="slow",
        requested_at=NOW,
    )


def _notice(i: int) -> NotifyStaff:
    """The owner's notice of a new case, as followup sends one with each detractor's case:
    its deadline in words (Babel) in the subject and the body."""
    return NotifyStaff(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id=f"n{i}",
        recipient="owner@example.com",
        role="owner",
        reason=StaffReason.ASSIGNED,
        level=0,
        # The deadline's minute, as a busy minute's cases share it (2 business days on).
        due_at=NOW + timedelta(days=2, seconds=i % 60),
        segment=Segment.DETRACTOR,
        score=2,
        requested_at=NOW,
        customer_name="Ada",
        comment="slow",
    )


def _sms(i: int) -> SendSms:
    customer = Customer(id=f"s{i}", phone=f"+1555{i:07d}", name="Ada")
    return SendSms(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=customer,
        template="detractor_apology",
        requested_at=NOW,
    )


def _ticket(i: int) -> CreateTicket:
    """The helpdesk ticket followup asks for with each detractor's case (the default policy's
    `kind: ticket`, priority high)."""
    customer = Customer(id=f"t{i}", email=f"t{i}@example.com", name="Ada")
    return CreateTicket(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer=customer,
        priority=TicketPriority.HIGH,
        title="Detractor: Ada scored 2",
        score=2,
        segment=Segment.DETRACTOR,
        comment="slow",
        requested_at=NOW,
    )


async def _alone(channel: Any, jobs: list[Any], concurrency: int) -> tuple[float, float]:
    """Actions per second and CPU milliseconds per action."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Any) -> None:
        async with gate:
            await channel.send(job)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(j) for j in jobs))
    return _rates(len(jobs), started, cpu)


async def _dispatched(
    dispatcher: Dispatcher, actions: list[Event], batch: int
) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(actions), batch):
        await dispatcher.dispatch(actions[i : i + batch])
    return _rates(len(actions), started, cpu)


class _Statements:
    """Counts the statements the engine runs: SQLAlchemy's events for what goes through the
    session, asyncpg's query logger for what runs on the driver connection
    (`nps_kit.db.driver_connection`: the outbox, the ledger's slice statements). Neither counts
    `BEGIN` and `COMMIT`. (Its count of commits read 0: the engine's `commit` event did not
    fire for the units of work; `_TimedLedger` counts the transactions instead.)"""

    def __init__(self, engine: Any) -> None:
        self.statements = self.transactions = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(engine.sync_engine, "commit", self._commit)
        event.listen(engine.sync_engine, "connect", self._connect)

    def _connect(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(self._driver_statement)

    def _driver_statement(self, record: Any) -> None:
        if record.query.split(None, 1)[0].rstrip(";").upper() not in (
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
        ):
            self.statements += 1

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def _commit(self, *_: Any) -> None:
        self.transactions += 1

    def reset(self) -> tuple[int, int]:
        counted = self.statements, self.transactions
        self.statements = self.transactions = 0
        return counted


def _postgres_cpu(data_dir: Path) -> float:
    """CPU seconds the PostgreSQL cluster has spent: the postmaster and its children (the
    backends, kept open by the pool, and the background workers), from /proc."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        pid = int(stat.parent.name)
        if pid == postmaster or int(fields[1]) == postmaster:  # fields[1]: the parent's pid
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / ticks


def _process_cpu(pid: int | None) -> float:
    """CPU seconds process `pid` has spent (utime + stime, from /proc); 0 without one."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _TimedLedger:
    """The dispatcher's ledger transactions, counted and timed (commit included): what part of
    a dispatch's wall time waits on the ledger rather than on the sends, and the CPU this
    process spends in them (no send is in flight while the dispatcher writes the ledger, so
    the process's CPU meanwhile is the ledger's)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.wall = self.cpu = 0.0
        self.opened = 0

    @contextlib.asynccontextmanager
    async def __call__(self) -> Any:
        self.opened += 1
        started, cpu = time.perf_counter(), time.process_time()
        try:
            async with self.inner() as repo:
                yield repo
        finally:
            self.wall += time.perf_counter() - started
            self.cpu += time.process_time() - cpu


#: `--only`'s names for the lines.
_LINES = {
    "email to the SMTP sink": "email",
    "staff notice to the SMTP sink": "notice",
    "SMS to the HTTP fake (Twilio)": "sms",
    "helpdesk ticket to the HTTP fake (Zendesk)": "ticket",
}


def _rates(n: int, started: float, cpu: float) -> tuple[float, float]:
    return n / (time.perf_counter() - started), (time.process_time() - cpu) / n * 1000


async def run(
    n: int,
    *,
    concurrency: int,
    connections: int,
    pipelining: bool,
    database_url: str,
    smtp_port: int,
    twilio_url: str,
    fake: FakeTwilio,
    zendesk_url: str,
    zendesk: FakeZendesk,
    batch: int,
    postgres_dir: Path,
    sink_pid: int | None,
    fake_pid: int | None,
    zendesk_pid: int | None,
    only: set[str] | None = None,
    repeat: int = 1,
) -> None:
    engine = create_engine(
        DatabaseSettings.model_validate({"url": database_url}), application_name="bench-notify"
    )
    counted = _Statements(engine)
    sessions = session_factory(engine)
    email = SmtpEmailChannel(
        SmtpSettings(port=smtp_port, max_connections=connections, pipelining=pipelining),
        renderer=TemplateRenderer(),
        attempts=1,
    )
    sms = TwilioSmsChannel(
        TwilioSettings.model_validate(
            {
                "account_sid": fake.account_sid,
                "auth_token": fake.auth_token,
                "from_number": "+15005550006",
                "base_url": twilio_url,
                "rate_per_second": 100_000,
            }
        ),
        renderer=TemplateRenderer(),
        attempts=1,
    )
    tickets = ZendeskTicketChannel(
        ZendeskSettings.model_validate(
            {
                "base_url": zendesk_url,
                "email": zendesk.email,
                "api_token": zendesk.api_token,
                "rate_per_second": 100_000,
            }
        ),
        attempts=1,
    )
    ledger = _TimedLedger(ledger_in(sessions))
    dispatcher = Dispatcher(
        ledger=ledger,
        channels={"email": email, "sms": sms, "ticket": tickets},
        clock=SystemClock(),
        concurrency=concurrency,
        case_url="http://cs.example.com/cases/{case_id}",
    )
    rows = []
    for name, make, to_job in (
        ("email to the SMTP sink", _email, lambda a: email_job(a, case_url="-")),
        ("staff notice to the SMTP sink", _notice, lambda a: email_job(a, case_url="-")),
        ("SMS to the HTTP fake (Twilio)", _sms, sms_job),
        (
            "helpdesk ticket to the HTTP fake (Zendesk)",
            _ticket,
            lambda a: ticket_job(a, case_url="-"),
        ),
    ):
        if only is not None and _LINES[name] not in only:
            continue
        channel: Any = sms if name.startswith("SMS") else email
        peer = sink_pid if channel is email else fake_pid
        if name.startswith("helpdesk"):
            channel, peer = tickets, zendesk_pid
        await _alone(channel, [to_job(make(i)) for i in range(50)], concurrency)  # warm up
        for _ in range(repeat - 1):  # --repeat: a longer run of the line, for a profiler
            await _alone(channel, [to_job(make(i)) for i in range(n)], concurrency)
        alone, alone_cpu = await _alone(channel, [to_job(make(i)) for i in range(n)], concurrency)
        counted.reset()
        postgres, peer_cpu = _postgres_cpu(postgres_dir), _process_cpu(peer)
        ledger.wall = ledger.cpu = 0.0
        ledger.opened = 0
        started = time.perf_counter()
        through, through_cpu = await _dispatched(dispatcher, [make(i) for i in range(n)], batch)
        ledger_share = ledger.wall / (time.perf_counter() - started)
        ledger_ms = ledger.cpu / n * 1000
        postgres_ms = (_postgres_cpu(postgres_dir) - postgres) / n * 1000
        peer_ms = (_process_cpu(peer) - peer_cpu) / n * 1000
        statements, _ = counted.reset()
        transactions = ledger.opened
        rows.append(
            (
                name,
                alone,
                alone_cpu,
                through,
                through_cpu,
                ledger_ms,
                statements,
                transactions,
                postgres_ms,
                peer_ms,
                ledger_share,
            )
        )
    await email.aclose()
    await sms.aclose()
    await tickets.aclose()
    await engine.dispose()
    print(
        f"{n} actions per line, {concurrency} in flight ({connections} SMTP connections, "
        f"SMTP_PIPELINING={str(pipelining).lower()}), batches of {batch}"
    )
    print(
        "| channel | channel alone (CPU per action) "
        "| through the dispatcher, ledger + outbox (CPU per action) "
        "| of which in ledger transactions (CPU per action) "
        "| statements (transactions) per 100 actions | PostgreSQL's CPU per action "
        "| the sink's or fake's CPU per action | wall time in ledger transactions |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (
        name,
        alone,
        alone_cpu,
        through,
        through_cpu,
        ledger_ms,
        st,
        tx,
        pg_ms,
        peer_ms,
        share,
    ) in rows:
        print(
            f"| {name} | {alone:,.0f}/s ({alone_cpu:.2f} ms) "
            f"| {through:,.0f}/s ({through_cpu:.2f} ms) | {ledger_ms:.2f} ms "
            f"| {st * 100 / n:.0f} ({tx * 100 / n:.0f}) | {pg_ms:.2f} ms "
            f"| {peer_ms:.2f} ms | {share:.0%} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--actions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument(
        "--connections",
        type=int,
        default=SmtpSettings().max_connections,
        help="SMTP connections kept open to the sink (SMTP_MAX_CONNECTIONS)",
    )
    parser.add_argument(
        "--no-pipelining",
        action="store_true",
        help="SMTP_PIPELINING=false: one command at a time even where the sink offers "
        "PIPELINING (smtp-sink does; aiosmtpd does not)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=500,
        help="actions per dispatch call: 500 is a full consumer poll, 1 a steady stream",
    )
    parser.add_argument(
        "--sink",
        choices=["smtp-sink", "aiosmtpd", "in-process"],
        default=default_sink(),
        help="the SMTP sink: Postfix's smtp-sink (the default when installed), aiosmtpd in a "
        "process of its own, or aiosmtpd in a thread of this process (its CPU then counts as "
        "the sender's)",
    )
    parser.add_argument(
        "--sink-in-process", action="store_true", help="the same as --sink in-process"
    )
    parser.add_argument(
        "--fake-in-process",
        action="store_true",
        help="serve the fake Twilio from a thread of this process (its CPU then counts as the "
        "sender's, as it did before 2026-12-06)",
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated lines to run (email, notice, sms, ticket): e.g. to profile one",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="send each line's N actions through the channel alone this many times (the "
        "last one measured): a longer run to attach a profiler to",
    )
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    if only is not None and not only <= set(_LINES.values()):
        parser.error(f"--only: one or more of {', '.join(_LINES.values())}")
    configure_logging(LogSettings(level="WARNING", format="console"), service="bench")
    tmp = Path(tempfile.mkdtemp(prefix="npsloop-bench-notify-"))
    postgres = EmbeddedPostgres(data_dir=tmp / "postgres", port=free_port(), durable=False)
    postgres.start()
    mail_port = free_port()
    mail = MailSink(directory=tmp / "mail", port=mail_port)
    sink: subprocess.Popen[bytes] | None = None
    if args.sink_in_process or args.sink == "in-process":
        mail.start()
    else:
        sink = start_mail_sink(tmp / "mail", mail_port, args.sink)
    print(f"SMTP sink: {'in-process' if sink is None else args.sink}")
    fake = FakeTwilio()
    fake_process: subprocess.Popen[bytes] | None = None
    zendesk = FakeZendesk()
    zendesk_process: subprocess.Popen[bytes] | None = None
    try:
        upgrade("nps_notify", postgres.url)
        with contextlib.ExitStack() as serving:
            if args.fake_in_process:
                twilio_url = serving.enter_context(served(fake.app()))
                zendesk_url = serving.enter_context(served(zendesk.app()))
            else:
                fake_process, twilio_url = start_fake_provider("fake_twilio", "FakeTwilio")
                zendesk_process, zendesk_url = start_fake_provider("fake_zendesk", "FakeZendesk")
            asyncio.run(
                run(
                    args.actions,
                    concurrency=args.concurrency,
                    connections=args.connections,
                    pipelining=not args.no_pipelining,
                    database_url=postgres.url,
                    smtp_port=mail_port,
                    twilio_url=twilio_url,
                    fake=fake,
                    zendesk_url=zendesk_url,
                    zendesk=zendesk,
                    batch=args.batch,
                    postgres_dir=tmp / "postgres",
                    sink_pid=sink.pid if sink is not None else None,
                    fake_pid=fake_process.pid if fake_process is not None else None,
                    zendesk_pid=zendesk_process.pid if zendesk_process is not None else None,
                    only=only,
                    repeat=args.repeat,
                )
            )
    finally:
        for process in (sink, fake_process, zendesk_process):
            stop_process(process, sig=signal.SIGTERM, timeout=10)
        mail.stop()
        postgres.stop()


if __name__ == "__main__":
    main()
