"""Message templates: shipped with notify, overridable file by file from a directory, in any
number of languages, checked whole at start-up.

A template is `<message>/<part>[.<locale>].<ext>.j2`:

- `<message>`: the template an action names (`detractor_apology`…), or `staff_notice`;
- `<part>.<ext>`: `subject.txt`, `body.txt`, `body.html` (an email: all three) or `sms.txt`;
- `<locale>`: `fr`, `pt-BR`…; none for the default variant (English, as shipped).

The variant is chosen per message from the reader's locale, most specific first (`pt-BR`, then
`pt`, then the default), and for each name the templates directory comes before the shipped
templates. Files under `_shared/` are for `{% extends %}` and `{% include %}` only. Names that
start with a dot are ignored (a Kubernetes ConfigMap volume keeps its `..data` there).
docs/templates.md documents every variable.
"""

import re
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_time, format_timedelta
from babel.dates import get_datetime_format as babel_datetime_format
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
    nodes,
    select_autoescape,
)

from nps_notify.domain.messages import body_text, header_text, locale_chain, shorten

STAFF_NOTICE = "staff_notice"
EMAIL_PARTS = ("subject.txt", "body.txt", "body.html")
SMS_PARTS = ("sms.txt",)
SHARED = "_shared/"
NAME = re.compile(
    r"^(?P<message>[a-z][a-z0-9_]*)/(?P<part>subject|body|sms)"
    r"(?:\.(?P<locale>[a-z]{2,3}(?:-[A-Z]{2})?))?\.(?P<ext>txt|html)\.j2$"
)
#: A staff notice quotes this much of the customer's comment, on one line.
COMMENT_IN_NOTICE = 280

#: What every template receives, by name: docs/templates.md says the same to a person.
COMMON_VARIABLES: dict[str, str] = {
    "brand": "the sender's brand name (NOTIFY_BRAND, or the team's in NOTIFY_SENDERS)",
    "signature": "the closing lines of a message, may span lines (NOTIFY_SIGNATURE, or the team's)",
    "locale": "the language tag of the variant being rendered: '' for the default, else fr, pt-BR…",
}
#: What a text message to a customer receives (`sms.txt`).
SMS_VARIABLES: dict[str, str] = {
    **COMMON_VARIABLES,
    "name": "the customer's name, or none",
}
#: What an email to a customer receives (every template but staff_notice).
CUSTOMER_VARIABLES: dict[str, str] = {
    **SMS_VARIABLES,
    "score": "the customer's answer, 0 to 10",
    "comment": "what the customer wrote, or none; may span lines",
    "content_title": "the page the policy chose by the comment's themes (content_by_theme): "
    "its title; or none",
    "content_url": "that page's address (http or https); or none",
    "content_summary": "that page's one-line summary; or none",
    "referral_url": "the customer's referral link (promoters, when the policy has a referral "
    "program); or none",
    "referral_code": "the customer's referral code, the one in referral_url; or none",
}
#: What a notice to a person of the team receives (staff_notice).
STAFF_VARIABLES: dict[str, str] = {
    **COMMON_VARIABLES,
    "score": "the customer's answer, 0 to 10",
    "reason": "why the person is told: assigned, reminder or escalation",
    "role": "who they are on the case: owner, lead or second_level",
    "level": "the escalation level: 0 none, 1 the team lead, 2 the second level",
    "segment": "detractor, passive or promoter",
    "customer_name": "the customer's name, or none",
    "comment": f"what the customer wrote, on one line, shortened to {COMMENT_IN_NOTICE} "
    "characters; or none",
    "due_at": "the contact deadline in the reader's language and time zone "
    "('Monday, December 7, 2026, 5:00 PM Central European Standard Time'); or none",
    "due_in": "the deadline in words from now ('in 2 days', '3 hours ago'); or none",
    "overdue": "true when the deadline has passed",
    "case_url": "the case in the console (NOTIFY_CONSOLE_URL + /cases/<id>)",
}


#: What followup chose for one customer (a page by theme, a referral link): none when absent.
_CHOSEN_FOR_THE_CUSTOMER = (
    "content_title",
    "content_url",
    "content_summary",
    "referral_url",
    "referral_code",
)


def variables_of(message: str, part: str = "subject.txt") -> dict[str, str]:
    """What `part` of `message` receives."""
    if message == STAFF_NOTICE:
        return STAFF_VARIABLES
    return SMS_VARIABLES if part in SMS_PARTS else CUSTOMER_VARIABLES


class PermanentFailure(Exception):  # noqa: N818 - an outcome, named for what it is
    """The message can never be sent as it is (unknown template, address refused, …)."""


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line if self.line is not None else '?'}: {self.message}"


class TemplatesInvalid(Exception):  # noqa: N818 - named for the state it reports
    """The templates cannot all be rendered; each problem names its file and line."""

    def __init__(self, problems: list[TemplateProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    #: The variant used: '' for the default, else the locale (fr, pt-BR…).
    locale: str = ""


def _zone(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _babel_locale(tag: str) -> Locale:
    try:
        return Locale.parse(tag.replace("-", "_")) if tag else Locale("en")
    except (UnknownLocaleError, ValueError):
        return Locale("en")


def when(moment: datetime, *, locale: str, timezone: str | None) -> str:
    """`moment` as a reader of `locale` in `timezone` says it, with the zone's name:
    'Monday, December 7, 2026, 5:00 PM Central European Standard Time'. The words name the
    minute, so they are kept per minute, locale and zone: Babel took ~26 µs for them, in every
    staff notice, where a busy minute's cases share their deadline's minute."""
    return _when(moment.astimezone(UTC).replace(second=0, microsecond=0), locale, timezone)


@lru_cache(maxsize=4096)
def _when(moment: datetime, locale: str, timezone: str | None) -> str:
    where, lang = _zone(timezone), _babel_locale(locale)
    local = moment.astimezone(where)
    date = format_date(local, "full", locale=lang)
    time = format_time(local, "short", tzinfo=where, locale=lang)
    zone = format_datetime(local, "zzzz", tzinfo=where, locale=lang)
    pattern = str(babel_datetime_format("medium", locale=lang))
    return pattern.replace("{1}", date).replace("{0}", f"{time} {zone}")


def within(delta: timedelta, *, locale: str) -> str:
    """`delta` in words: 'in 2 days', '3 hours ago' (in `locale`)."""
    return format_timedelta(delta, add_direction=True, locale=_babel_locale(locale))


def present(
    message: str,
    context: Mapping[str, object],
    *,
    locale: str,
    timezone: str | None,
    now: datetime,
    header: bool = False,
) -> dict[str, object]:
    """The variables a template receives, from the job's context: text shown harmlessly in a
    body, or fit for a `header` (domain/messages.py), dates in the reader's language and time
    zone."""
    [shown] = _presented(
        message,
        context,
        locale=locale,
        timezone=timezone,
        now=now,
        cleans=(header_text if header else body_text,),
    )
    return shown


def _presented(
    message: str,
    context: Mapping[str, object],
    *,
    locale: str,
    timezone: str | None,
    now: datetime,
    cleans: Sequence[Callable[[str], str]],
) -> list[dict[str, object]]:
    """`present` once per way of cleaning text, the dates put in words once for all (an
    email's body and its subject line: Babel's words for a deadline cost ~40 µs)."""
    dates: dict[str, object] = {}
    if message == STAFF_NOTICE:
        due = context.get("due_at")
        if isinstance(due, datetime):
            dates["due_at"] = when(due, locale=locale, timezone=timezone)
            dates["due_in"] = within(due - now, locale=locale)
            dates["overdue"] = due <= now
        else:
            dates["due_at"] = dates["due_in"] = None
            dates["overdue"] = False
    presented = []
    for clean in cleans:
        shown: dict[str, object] = {"locale": locale}
        for key, value in context.items():
            shown[key] = clean(value) if isinstance(value, str) else value
        if message != STAFF_NOTICE:
            # Optional, and newer than some callers' contexts: absent means none.
            for key in _CHOSEN_FOR_THE_CUSTOMER:
                shown.setdefault(key, None)
        if message == STAFF_NOTICE:
            comment = shown.get("comment")
            shown["comment"] = (
                shorten(comment, COMMENT_IN_NOTICE) if isinstance(comment, str) else None
            )
            shown.update(dates)
        presented.append(shown)
    return presented


def sample_context(message: str, *, now: datetime) -> dict[str, object]:
    """A case to render `message` with: for `templates check`, `templates preview` and the
    start-up check (every variable set, the longest branches taken)."""
    common: dict[str, object] = {
        "brand": "Example Shop",
        "signature": "Sam Rivera\nCustomer success, Example Shop",
        "score": 3,
    }
    comment = (
        "The parcel arrived two weeks late and nobody answered my emails. "
        "I still like the product, but I will think twice before ordering again."
    )
    if message == STAFF_NOTICE:
        return {
            **common,
            "reason": "escalation",
            "role": "lead",
            "level": 1,
            "segment": "detractor",
            "customer_name": "Ada Lovelace",
            "comment": comment,
            "due_at": now - timedelta(hours=3),  # an escalation: the deadline has passed
            "case_url": "https://console.example.com/cases/00000000-0000-4000-8000-000000000001",
        }
    return {
        **common,
        "name": "Ada Lovelace",
        "comment": comment,
        "content_title": "Ten minutes to set up your first project",
        "content_url": "https://help.example.com/guides/first-project?from=nps&theme=onboarding",
        "content_summary": "The three steps our happiest customers take in their first week.",
        "referral_url": "https://example.com/r/k3q7x2mfa5tz4bnw",
        "referral_code": "k3q7x2mfa5tz4bnw",
    }


#: What a sample leaves unset to take the templates' other branches.
_OPTIONAL = frozenset({"name", "customer_name", "comment", "due_at", *_CHOSEN_FOR_THE_CUSTOMER})


def sample_contexts(message: str, *, now: datetime) -> list[dict[str, object]]:
    """The sample case, and its variations that take a template's other branches: every
    reason of a staff notice, a deadline ahead, and nothing optional set (no name, comment or
    deadline). The start-up check renders each template with all of them."""
    full = sample_context(message, now=now)
    bare = {k: (None if k in _OPTIONAL else v) for k, v in full.items()}
    if message != STAFF_NOTICE:
        return [full, bare]
    ahead = {**full, "due_at": now + timedelta(days=2)}
    return [
        full,
        *(
            {**ahead, "reason": reason, "level": level, "role": role}
            for reason, level, role in (
                ("assigned", 0, "owner"),
                ("reminder", 0, "owner"),
                ("escalation", 2, "second_level"),
            )
        ),
        bare,
    ]


def _visible(name: str) -> bool:
    return not any(part.startswith(".") for part in name.split("/"))


class TemplateRenderer:
    """Renders messages from the templates directory (when set) over the shipped templates.
    HTML is autoescaped, so a customer's comment full of markup or script stays inert; an
    unknown variable is an error (StrictUndefined), never an empty string."""

    def __init__(self, directory: Path | None = None) -> None:
        loaders: list[BaseLoader] = [PackageLoader("nps_notify", "templates")]
        if directory is not None:
            loaders.insert(0, FileSystemLoader(directory, followlinks=True))
        self.directory = directory
        self._env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            trim_blocks=False,
            keep_trailing_newline=True,
            # The templates in force are the ones checked at start-up: a file changed later is
            # neither re-read nor re-checked (Jinja's default stats each file on every render:
            # 30 µs per part, four parts per email, measured under the profiler).
            auto_reload=False,
        )
        self._env.globals.clear()  # no range(), lipsum(), dict(): only the documented variables
        self._names = frozenset(n for n in self._env.list_templates() if _visible(n))
        self._shipped = frozenset(n for n in loaders[-1].list_templates() if _visible(n))
        self._overridden = (
            frozenset(n for n in loaders[0].list_templates() if _visible(n))
            if directory is not None
            else frozenset()
        )

    @property
    def names(self) -> frozenset[str]:
        return self._names

    def variant(self, message: str, first_part: str, locale: str | None) -> str | None:
        """The locale variant to use for `message` ('' for the default), or None if none."""
        part, ext = first_part.split(".")
        for candidate in locale_chain(locale):
            if _name(message, part, candidate, ext) in self._names:
                return candidate
        return None

    def _render_part(self, name: str, context: Mapping[str, object]) -> str:
        try:
            return self._env.get_template(name).render(context)
        except TemplateNotFound:
            raise PermanentFailure(f"no template {name}") from None
        except TemplateError as exc:
            raise PermanentFailure(f"the template {name} failed: {exc}") from None

    def render(
        self,
        template: str,
        context: Mapping[str, object],
        *,
        locale: str | None = None,
        timezone: str | None = None,
        now: datetime | None = None,
    ) -> RenderedEmail:
        """The email `template` in the best variant for `locale` (subject, text and HTML of
        that one variant: a French subject never comes with an English body)."""
        variant = self.variant(template, "subject.txt", locale)
        if variant is None:
            raise PermanentFailure(f"no email template {template!r}")
        now = now or datetime.now(UTC)
        body, line = _presented(
            template,
            context,
            locale=variant,
            timezone=timezone,
            now=now,
            cleans=(body_text, header_text),
        )
        return RenderedEmail(
            subject=self._render_part(_name(template, "subject", variant, "txt"), line).strip(),
            text=self._render_part(_name(template, "body", variant, "txt"), body),
            html=self._render_part(_name(template, "body", variant, "html"), body),
            locale=variant,
        )

    def render_sms(
        self,
        template: str,
        context: Mapping[str, object],
        *,
        locale: str | None = None,
        now: datetime | None = None,
    ) -> str:
        """The SMS `template` (`sms.txt`) in the best variant for `locale`: plain text."""
        variant = self.variant(template, "sms.txt", locale)
        if variant is None:
            raise PermanentFailure(f"no SMS template {template!r}")
        shown = present(
            template, context, locale=variant, timezone=None, now=now or datetime.now(UTC)
        )
        return self._render_part(_name(template, "sms", variant, "txt"), shown).strip()

    # --- checking -----------------------------------------------------------------------

    def _filename(self, name: str) -> str:
        try:
            _, filename, _ = self._env.loader.get_source(self._env, name)  # type: ignore[union-attr]
        except TemplateNotFound:  # pragma: no cover - listed names exist
            return name
        return filename or name

    def check(self, *, now: datetime | None = None) -> list[TemplateProblem]:
        """Every problem of the templates in force: a name notify cannot place, a syntax
        error, a variable the message does not receive, a variant missing a part, a template
        that fails when rendered with a sample case. Each names its file and line."""
        now = now or datetime.now(UTC)
        problems: list[TemplateProblem] = []
        variants: dict[tuple[str, str], set[str]] = {}
        for name in sorted(self._names):
            file = self._filename(name)
            if name.startswith(SHARED):
                allowed = set(CUSTOMER_VARIABLES) | set(STAFF_VARIABLES)
            else:
                found = NAME.fullmatch(name)
                if found is None:
                    problems.append(
                        TemplateProblem(
                            file,
                            None,
                            "not a template name notify knows: "
                            "<message>/<part>[.<locale>].<ext>.j2 with part.ext one of "
                            "subject.txt, body.txt, body.html, sms.txt "
                            "(or a file under _shared/)",
                        )
                    )
                    continue
                part = f"{found['part']}.{found['ext']}"
                if part not in EMAIL_PARTS + SMS_PARTS:
                    problems.append(
                        TemplateProblem(
                            file,
                            None,
                            f"{part} is not a part: use {', '.join(EMAIL_PARTS + SMS_PARTS)}",
                        )
                    )
                    continue
                variants.setdefault((found["message"], found["locale"] or ""), set()).add(part)
                allowed = set(variables_of(found["message"], part))
            problems.extend(self._check_source(name, file, allowed))
        for (message, locale), parts in sorted(variants.items()):
            email = parts & set(EMAIL_PARTS)
            if email and email != set(EMAIL_PARTS):
                missing = ", ".join(p for p in EMAIL_PARTS if p not in email)
                where = _part_name(message, min(email), locale)
                problems.append(
                    TemplateProblem(
                        self._filename(where),
                        None,
                        f"the {locale or 'default'} variant of {message} has no {missing}: an "
                        "email needs subject.txt, body.txt and body.html in one language",
                    )
                )
        if not problems:
            problems.extend(self._check_renders(variants, now=now))
        return problems

    def _check_source(self, name: str, file: str, allowed: set[str]) -> list[TemplateProblem]:
        try:
            source, _, _ = self._env.loader.get_source(self._env, name)  # type: ignore[union-attr]
            tree = self._env.parse(source, name, file)
        except TemplateSyntaxError as exc:
            return [TemplateProblem(file, exc.lineno, f"syntax: {exc.message}")]
        unknown = sorted(meta.find_undeclared_variables(tree) - allowed)
        problems = []
        for variable in unknown:
            line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == variable), None)
            problems.append(
                TemplateProblem(
                    file,
                    line,
                    f"unknown variable {variable!r}: this message receives "
                    f"{', '.join(sorted(allowed))} (docs/templates.md)",
                )
            )
        return problems

    def _check_renders(
        self, variants: Mapping[tuple[str, str], set[str]], *, now: datetime
    ) -> list[TemplateProblem]:
        problems = []
        for (message, locale), parts in sorted(variants.items()):
            for part in sorted(parts):
                name = _part_name(message, part, locale)
                allowed = variables_of(message, part)
                for sample in sample_contexts(message, now=now):
                    shown = present(
                        message,
                        {k: v for k, v in sample.items() if k in allowed},
                        locale=locale,
                        timezone=None,
                        now=now,
                    )
                    try:
                        self._env.get_template(name).render(shown)
                    except Exception as exc:  # any error of any template: report it, its line
                        file = self._filename(name)
                        problems.append(
                            TemplateProblem(
                                file,
                                _template_line(exc, file),
                                f"fails with a sample case: {type(exc).__name__}: {exc}",
                            )
                        )
                        break  # one problem per file is enough to fix it
        return problems

    def verify(self) -> None:
        """Raise `TemplatesInvalid` naming every problem (notify's start-up check)."""
        problems = self.check()
        if problems:
            raise TemplatesInvalid(problems)

    def overriding(self) -> list[str]:
        """The names the templates directory provides, which replace shipped ones or add."""
        return sorted(self._overridden)

    @property
    def shipped(self) -> frozenset[str]:
        return self._shipped


def _name(message: str, part: str, locale: str, ext: str) -> str:
    return f"{message}/{part}{f'.{locale}' if locale else ''}.{ext}.j2"


def _part_name(message: str, part: str, locale: str) -> str:
    """`_name` for a part given as `subject.txt`."""
    kind, _, ext = part.partition(".")
    return _name(message, kind, locale, ext)


def _template_line(exc: BaseException, filename: str) -> int | None:
    """The line of `filename` where `exc` was raised: Jinja rewrites its tracebacks so that
    a template's frames name the template file and line."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__ or sys.exc_info()[2]):
        if frame.filename == filename:
            line = frame.lineno
    return line
