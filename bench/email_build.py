"""CPU to build one email and write its bytes, in process (no SMTP, no database):

- the channel's `message_for` (render the templates, check the parts, write the bytes);
- of which `to_bytes` alone (adapters/mime.py);
- the same parts written by the stdlib's `EmailMessage` and generator, as notify did before
  (tests/support/stdlib_email.py: `policy.default`, written with `policy.SMTP` as aiosmtplib's
  `send_message` did).

A customer email in French to a name with accents, with a comment holding an emoji; medians
of 7 runs over 500 distinct actions (`time.process_time`).

    .venv/bin/python bench/email_build.py
"""

import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support's reference

from nps_notify.adapters.email import SmtpEmailChannel, TemplateRenderer
from nps_notify.adapters.mime import Draft, to_bytes
from nps_notify.config import SmtpSettings
from nps_notify.domain.dispatch import EmailJob
from tests.support.stdlib_email import stdlib_bytes

RUNS, N = 7, 500


def _job(i: int) -> EmailJob:
    return EmailJob(
        action_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        customer_id=f"c{i}",
        channel="email",
        template="detractor_apology",
        to_address=f"b{i}@example.com",
        to_name="Zoë Ñandú",
        context={"name": "Zoë Ñandú", "score": 2, "comment": "slow, and the box was damaged 📦"},
        locale="fr",
    )


def _per_item_us(fn: Callable[[object], object], items: list[object]) -> float:
    runs = []
    for _ in range(RUNS):
        started = time.process_time()
        for item in items:
            fn(item)
        runs.append((time.process_time() - started) / len(items) * 1e6)
    return statistics.median(runs)


def main() -> None:
    channel = SmtpEmailChannel(
        SmtpSettings(
            reply_to="Customer success <cs@example.com>",
            unsubscribe_url="https://shop.example/optout?customer={customer_id}",
        ),
        renderer=TemplateRenderer(),
        attempts=1,
    )
    jobs: list[object] = [_job(i) for i in range(N)]
    drafts: list[object] = [channel.draft_for(j) for j in jobs]  # type: ignore[arg-type]

    def build(job: object) -> object:
        return channel.message_for(job)  # type: ignore[arg-type]

    def ours(draft: object) -> object:
        assert isinstance(draft, Draft)
        return to_bytes(draft)

    def stdlib(draft: object) -> object:
        assert isinstance(draft, Draft)
        return stdlib_bytes(draft)

    rows = [
        ("`message_for` (render + check + bytes)", _per_item_us(build, jobs)),
        ("`to_bytes` of the checked parts", _per_item_us(ours, drafts)),
        ("the same parts through `EmailMessage` + generator", _per_item_us(stdlib, drafts)),
    ]
    sys.stdout.write(f"| what ({N} emails, median of {RUNS}) | CPU per email |\n|---|---:|\n")
    for name, us in rows:
        sys.stdout.write(f"| {name} | {us:,.0f} µs |\n")


if __name__ == "__main__":
    main()
