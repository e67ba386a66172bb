"""`nps-notify serve|migrate`, and, offline, `nps-notify templates check DIR` and
`nps-notify templates preview TEMPLATE [--locale fr] [--channel sms] [--dir DIR] [--out FILE]`."""

import argparse
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from nps_kit.clock import FrozenClock
from nps_notify.adapters.email import SmtpEmailChannel
from nps_notify.adapters.templates import (
    STAFF_NOTICE,
    PermanentFailure,
    TemplateRenderer,
    TemplatesInvalid,
    sample_context,
)
from nps_notify.config import NotifySettings, SmtpSettings
from nps_notify.domain.dispatch import EmailJob, sms_segments, sms_units
from nps_notify.domain.messages import identity_for

_SAMPLE_CASE = uuid.UUID("00000000-0000-4000-8000-000000000001")


def check_templates(directory: Path) -> int:
    """`templates check DIR`: 0 if DIR over the shipped templates renders every message, 1
    (with each problem's file and line) if not."""
    if not directory.is_dir():
        sys.stderr.write(f"{directory}: not a directory\n")
        return 2
    renderer = TemplateRenderer(directory)
    problems = renderer.check()
    if problems:
        sys.stderr.write("".join(f"{p}\n" for p in problems))
        return 1
    overriding = renderer.overriding()
    replaced = sum(1 for name in overriding if name in renderer.shipped)
    sys.stdout.write(
        f"{directory}: ok ({replaced} of the {len(renderer.shipped)} shipped templates "
        f"replaced, {len(overriding) - replaced} added)\n"
    )
    return 0


def preview(
    template: str,
    *,
    locale: str | None,
    channel: str,
    directory: Path | None,
    out: Path | None,
    settings: NotifySettings,
    team: str | None = None,
) -> int:
    """Render `template` with a sample case, as the reader of `locale` would get it from
    `team` (its sender identity in `NOTIFY_SENDERS`)."""
    renderer = TemplateRenderer(directory)
    now = datetime.now(UTC).replace(microsecond=0)
    teams = settings.identities()
    sender = identity_for(team, teams=teams, default=settings.identity())
    context = sample_context(template, now=now)
    if "case_url" in context:
        context["case_url"] = settings.case_link.format(case_id=_SAMPLE_CASE)
    if channel == "sms":
        text = renderer.render_sms(
            template,
            {"brand": sender.brand, "signature": sender.signature, "name": context["name"]},
            locale=locale,
            now=now,
        )
        encoding, units = sms_units(text)
        shown = (
            f"{text}\n\n-- {len(text)} characters, {encoding.upper()} ({units} units), "
            f"{sms_segments(text)} segment(s); cut to TWILIO_MAX_SEGMENTS="
            f"{settings.twilio.max_segments} when sent\n"
        )
        return _write(shown, out)
    smtp = SmtpSettings.model_validate(settings.smtp.model_dump())
    email = SmtpEmailChannel(
        smtp,
        renderer=renderer,
        attempts=1,
        clock=FrozenClock(now),
        sender=settings.identity(),
        teams=teams,
        staff_timezone=settings.staff_timezone,
    )
    staff = template == STAFF_NOTICE
    job = EmailJob(
        action_id=uuid.UUID("00000000-0000-4000-8000-00000000a001"),
        case_id=_SAMPLE_CASE,
        customer_id="sample-customer",
        channel="staff" if staff else "email",
        template=template,
        to_address="sam.rivera@example.com" if staff else "ada@example.com",
        to_name=None if staff else "Ada Lovelace",
        context={k: v for k, v in context.items() if k not in ("brand", "signature")},
        locale=locale,
        timezone=None if staff else "Europe/Paris",
        team=team,
    )
    outgoing = email.message_for(job)
    if out is not None and out.suffix == ".eml":
        out.write_bytes(outgoing.data)  # the bytes the SMTP server would receive
        sys.stdout.write(f"wrote {out}\n")
        return 0
    message = outgoing.parsed()
    if out is not None and out.suffix in (".html", ".htm"):
        markup = message.get_body(("html",))
        return _write(str(markup.get_content()) if markup is not None else "", out)
    plain = message.get_body(("plain",))
    headers = "".join(f"{k}: {v}\n" for k, v in message.items() if k.lower() != "content-type")
    return _write(f"{headers}\n{plain.get_content() if plain is not None else ''}", out)


def _write(text: str, out: Path | None) -> int:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {out}\n")
    return 0


def templates_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="nps-notify templates", description="check and preview notify's message templates"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    checking = sub.add_parser("check", help="check a templates directory over the shipped ones")
    checking.add_argument("directory", type=Path)
    showing = sub.add_parser("preview", help="render a template with a sample case")
    showing.add_argument("template", help="e.g. detractor_apology, staff_notice")
    showing.add_argument("--locale", help="the reader's locale, e.g. fr or pt-BR")
    showing.add_argument("--channel", choices=("email", "sms"), default="email")
    showing.add_argument("--team", help="as a team of the policy sends it (NOTIFY_SENDERS)")
    showing.add_argument(
        "--dir", type=Path, help="a templates directory (default: NOTIFY_TEMPLATES_DIR)"
    )
    showing.add_argument(
        "--out", type=Path, help="write to FILE instead: .eml the whole email, .html its HTML"
    )
    args = parser.parse_args(argv)
    if args.command == "check":
        return check_templates(args.directory)
    try:
        settings = NotifySettings()
    except ValidationError as exc:
        sys.stderr.write(f"the settings are not valid:\n{exc}\n")
        return 2
    try:
        return preview(
            args.template,
            locale=args.locale,
            channel=args.channel,
            directory=args.dir or settings.templates_dir,
            out=args.out,
            settings=settings,
            team=args.team,
        )
    except PermanentFailure as exc:
        sys.stderr.write(f"{exc}\n")
        return 1


def main() -> None:
    if sys.argv[1:2] == ["templates"]:
        raise SystemExit(templates_command(sys.argv[2:]))
    # The service's own modules (FastAPI, SQLAlchemy, aiokafka…) only for the service: they
    # take ~5 s to import on the loaded 2-core machine: `templates check` took 4-9 s with
    # them, 1.4-1.7 s without.
    from nps_kit import cli  # noqa: PLC0415
    from nps_notify.bootstrap import build, erase_customer, templates  # noqa: PLC0415

    settings = NotifySettings()
    if sys.argv[1:2] == ["serve"]:
        # Refuse templates that cannot all be rendered before connecting to anything, with
        # the file and line of each problem.
        try:
            templates(settings)
        except TemplatesInvalid as exc:
            sys.stderr.write("".join(f"{p}\n" for p in exc.problems))
            raise SystemExit(2) from None
    cli.main(
        service="notify",
        log=settings.log,
        http=settings.http,
        host=settings.host,
        port=settings.port,
        build=lambda: build(settings),
        migrations=("nps_notify", settings.database.url),
        erase=lambda customer_id: erase_customer(settings, customer_id),
    )


if __name__ == "__main__":
    main()
