"""Templates are configuration: a directory overrides the shipped templates file by file, each
message speaks the reader's language with a fallback, and a template that cannot render stops
notify at start-up naming its file and line."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from nps_notify.__main__ import check_templates, templates_command
from nps_notify.adapters.templates import (
    CUSTOMER_VARIABLES,
    SMS_VARIABLES,
    STAFF_VARIABLES,
    PermanentFailure,
    TemplateRenderer,
    _when,
    when,
)
from nps_notify.config import NotifySettings
from nps_notify.domain.messages import body_text, header_text, locale_chain, shorten

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)
CONTEXT = {
    "brand": "Example Shop",
    "signature": "The Example Shop team",
    "name": "Ada",
    "score": 3,
    "comment": None,
}
#: The five languages of scoring's theme taxonomy (services/scoring/.../themes.yaml).
LANGUAGES = ("en", "fr", "es", "pt", "de")
CUSTOMER_MESSAGES = (
    "detractor_acknowledgement",
    "detractor_apology",
    "passive_education",
    "promoter_thank_you",
)


def _write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_an_override_directory_changes_the_subject_and_body_of_the_acknowledgement(
    tmp_path: Path,
) -> None:
    _write(tmp_path, "detractor_acknowledgement/subject.txt.j2", "{{ brand }} read your answer")
    _write(tmp_path, "detractor_acknowledgement/body.txt.j2", "Dear {{ name }}, {{ score }}/10.\n")
    rendered = TemplateRenderer(tmp_path).render("detractor_acknowledgement", CONTEXT)
    assert rendered.subject == "Example Shop read your answer"
    assert rendered.text == "Dear Ada, 3/10.\n"
    # The file not overridden is the shipped one.
    assert "reply to this email" in rendered.html
    shipped = TemplateRenderer().render("detractor_acknowledgement", CONTEXT)
    assert shipped.subject.startswith("Ada, we hear you")


def test_an_override_directory_can_add_a_message_of_its_own(tmp_path: Path) -> None:
    for part in ("subject.txt", "body.txt", "body.html"):
        _write(tmp_path, f"winback/{part}.j2", f"{part}: {{{{ name }}}}")
    rendered = TemplateRenderer(tmp_path).render("winback", CONTEXT)
    assert (rendered.subject, rendered.text) == ("subject.txt: Ada", "body.txt: Ada")


@pytest.mark.parametrize(
    ("locale", "variant", "subject"),
    [
        ("fr", "fr", "Ada, nous sommes désolés"),
        ("fr-CA", "fr", "Ada, nous sommes désolés"),
        ("pt-BR", "pt", "Ada, sentimos muito"),
        ("es", "es", "Ada, lo sentimos"),
        ("de", "de", "Ada, es tut uns leid"),
        ("en", "", "Ada, we are sorry"),
        ("ja", "", "Ada, we are sorry"),
        (None, "", "Ada, we are sorry"),
    ],
)
def test_a_customer_gets_their_language_or_the_nearest_one_shipped(
    locale: str | None, variant: str, subject: str
) -> None:
    rendered = TemplateRenderer().render("detractor_apology", CONTEXT, locale=locale)
    assert rendered.locale == variant
    assert rendered.subject.startswith(subject)


@pytest.mark.parametrize("message", CUSTOMER_MESSAGES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_customer_message_is_shipped_in_the_five_languages(
    message: str, language: str
) -> None:
    renderer = TemplateRenderer()
    rendered = renderer.render(message, CONTEXT, locale=language)
    assert rendered.locale == ("" if language == "en" else language)
    assert f'<html lang="{language if language != "en" else "en"}">' in rendered.html
    assert renderer.render_sms(message, CONTEXT, locale=language).startswith("Example Shop")


def test_a_locale_variant_in_the_directory_comes_before_the_shipped_one(tmp_path: Path) -> None:
    for part in ("subject", "body"):
        _write(tmp_path, f"detractor_apology/{part}.fr.txt.j2", f"fr {part}")
    _write(tmp_path, "detractor_apology/body.fr.html.j2", "fr html")
    _write(tmp_path, "detractor_apology/subject.pt-BR.txt.j2", "oi")  # incomplete: check says
    renderer = TemplateRenderer(tmp_path)
    assert renderer.render("detractor_apology", CONTEXT, locale="fr").subject == "fr subject"
    # Only an English override: a French reader still gets the shipped French.
    english = TemplateRenderer(
        _write(tmp_path / "en", "detractor_apology/subject.txt.j2", "x").parents[1]
    )
    assert english.render("detractor_apology", CONTEXT, locale="fr").subject.startswith("Ada, nous")


def test_an_unknown_template_fails_the_action_not_the_batch() -> None:
    with pytest.raises(PermanentFailure, match="no SMS template 'nope'"):
        TemplateRenderer().render_sms("nope", CONTEXT)


# --- checking ---------------------------------------------------------------------------------


def test_the_shipped_templates_have_no_problem() -> None:
    assert TemplateRenderer().check(now=NOW) == []


def _problems(tmp_path: Path) -> list[str]:
    return [str(p) for p in TemplateRenderer(tmp_path).check(now=NOW)]


def test_a_syntax_error_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "detractor_apology/body.txt.j2", "Hello,\n\n{{ name }\n{{ score }}\n")
    [problem] = _problems(tmp_path)
    assert problem.startswith(f"{path}:3: syntax: unexpected '}}'")


def test_an_unknown_variable_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "detractor_apology/subject.txt.j2", "Hi\n{{ first_name }}")
    [problem] = _problems(tmp_path)
    assert problem.startswith(f"{path}:2: unknown variable 'first_name'")
    assert "name, score" in problem or "comment" in problem  # says what it receives


def test_a_customer_message_cannot_use_the_staff_notices_variables(tmp_path: Path) -> None:
    _write(tmp_path, "promoter_thank_you/sms.txt.j2", "{{ name }}: {{ case_url }}")
    [problem] = _problems(tmp_path)
    assert ":1: unknown variable 'case_url'" in problem


def test_a_template_that_fails_with_a_sample_case_is_named_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "detractor_apology/body.txt.j2", "ok\n{{ score.missing }}\n")
    [problem] = _problems(tmp_path)
    assert problem.startswith(f"{path}:2: fails with a sample case:")


@pytest.mark.parametrize(
    ("name", "source"),
    [
        # Only a reminder takes this branch; the sample case is an escalation.
        ("staff_notice/body.txt.j2", '{% if reason == "reminder" %}\n{{ level.days }}{% endif %}'),
        # Breaks only for a customer who gave no name.
        ("detractor_apology/body.txt.j2", "Dear\n{{ name.upper() }}"),
    ],
)
def test_a_branch_the_sample_case_does_not_take_is_checked_too(
    tmp_path: Path, name: str, source: str
) -> None:
    path = _write(tmp_path, name, source)
    [problem] = _problems(tmp_path)
    assert problem.startswith(f"{path}:2: fails with a sample case:")


def test_a_variant_missing_a_part_and_a_misnamed_file_are_problems(tmp_path: Path) -> None:
    _write(tmp_path, "detractor_apology/subject.fr-FR.txt.j2", "Bonjour")
    _write(tmp_path, "detractor_apology/subjet.txt.j2", "typo")
    problems = "\n".join(_problems(tmp_path))
    assert "the fr-FR variant of detractor_apology has no body.txt, body.html" in problems
    assert "subjet.txt.j2:?: not a template name notify knows" in problems


def test_the_files_of_a_kubernetes_configmap_volume_are_read_and_its_dot_entries_ignored(
    tmp_path: Path,
) -> None:
    # A ConfigMap volume: the files live in a timestamped directory behind `..data`, and each
    # visible name is a symbolic link through it.
    data = tmp_path / "..2026_12_04_15_30_00.000000001"
    _write(data, "detractor_apology/subject.txt.j2", "{{ brand }}: sorry")
    (tmp_path / "..data").symlink_to(data.name)
    (tmp_path / "detractor_apology").symlink_to("..data/detractor_apology")
    renderer = TemplateRenderer(tmp_path)
    assert renderer.check(now=NOW) == []
    assert renderer.render("detractor_apology", CONTEXT).subject == "Example Shop: sorry"


def test_templates_check_says_ok_or_lists_the_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, "detractor_apology/subject.txt.j2", "{{ brand }}: sorry")
    assert check_templates(tmp_path) == 0
    shipped = len(TemplateRenderer().shipped)
    assert f"ok (1 of the {shipped} shipped templates replaced, 0 added)" in capsys.readouterr().out
    _write(tmp_path, "detractor_apology/body.txt.j2", "{{ nme }}")
    assert check_templates(tmp_path) == 1
    assert "body.txt.j2:1: unknown variable 'nme'" in capsys.readouterr().err


def test_a_broken_template_stops_notify_at_start_up_naming_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "staff_notice/subject.txt.j2", "Case {{ case_id }}")
    done = subprocess.run(
        [sys.executable, "-m", "nps_notify", "serve"],
        env={**os.environ, "NOTIFY_TEMPLATES_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"{path}:1: unknown variable 'case_id'" in done.stderr


# --- preview ----------------------------------------------------------------------------------


def test_preview_renders_an_email_in_the_readers_language(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_TEMPLATES_DIR", raising=False)
    assert templates_command(["preview", "detractor_apology", "--locale", "fr"]) == 0
    out = capsys.readouterr().out
    assert "Subject: Ada Lovelace, nous sommes désolés" in out
    assert "Vous avez écrit :" in out


def test_preview_of_an_sms_shows_its_segments_and_encoding(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert templates_command(["preview", "promoter_thank_you", "--channel", "sms"]) == 0
    out = capsys.readouterr().out
    assert "thank you for recommending us" in out
    assert "GSM7" in out
    assert "1 segment(s)" in out


def test_preview_writes_a_whole_email_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "notice.eml"
    assert templates_command(["preview", "staff_notice", "--out", str(out)]) == 0
    assert b"Auto-Submitted: auto-generated" in out.read_bytes()


# --- the documentation ------------------------------------------------------------------------


def test_docs_templates_md_documents_every_variable() -> None:
    doc = (ROOT / "docs" / "templates.md").read_text(encoding="utf-8")
    for variable in {*CUSTOMER_VARIABLES, *SMS_VARIABLES, *STAFF_VARIABLES}:
        assert f"`{variable}`" in doc, variable


# --- text npsloop does not control ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "header", "body"),
    [
        ("Ada", "Ada", "Ada"),
        ("Ada\u202eexe.gnp", "Adaexe.gnp", "Ada[U+202E]exe.gnp"),
        ("a\u2066b\u2069c", "abc", "a[U+2066]b[U+2069]c"),
        ("zero\u200bwidth\u2060joined\ufeff", "zerowidthjoined", "zerowidthjoined"),
        (
            "👨\u200d👩\u200d👧",
            "👨👩👧",
            "👨\u200d👩\u200d👧",
        ),  # the family emoji keeps its ZWJ in bodies
        ("\u05d3\u05e0\u05d4\u200f", "\u05d3\u05e0\u05d4", "\u05d3\u05e0\u05d4\u200f"),  # RLM mark
        ("two\nlines\tand\x07bell", "two lines andbell", "two\nlines\tandbell"),
        ("soft\u00adhyphen", "softhyphen", "softhyphen"),
        # Printable text (the common case, taken by a shorter path) only has its spaces folded
        # in headers, and is kept as it is in bodies.
        ("  Zoë   Ngũgĩ  ", "Zoë Ngũgĩ", "  Zoë   Ngũgĩ  "),
        ("جميل جدا", "جميل جدا", "جميل جدا"),
        # Separators that are not U+0020: a line or paragraph separator and a no-break space
        # are spaces in a header; the file and group separators (controls) are dropped.
        ("a\u2028b\u2029c\xa0d", "a b c d", "a\u2028b\u2029c\xa0d"),
        ("a\x1cb\x1dc\x1fd\x7fe", "abcde", "abcde"),
        ("line one\r\nline two\x0c", "line one line two", "line one\r\nline two"),
        ("café\n\u202edone", "café done", "café\n[U+202E]done"),
    ],
)
def test_invisible_characters_are_dropped_from_headers_and_shown_harmlessly_in_bodies(
    raw: str, header: str, body: str
) -> None:
    assert (header_text(raw), body_text(raw)) == (header, body)


@pytest.mark.parametrize(
    ("locale", "chain"),
    [
        ("pt-BR", ("pt-BR", "pt", "")),
        ("fr", ("fr", "")),
        (None, ("",)),
        ("", ("",)),
        ("../etc", ("",)),
    ],
)
def test_a_locale_falls_back_to_its_language_then_to_the_default(
    locale: str | None, chain: tuple[str, ...]
) -> None:
    assert locale_chain(locale) == chain


def test_a_long_comment_is_shortened_at_a_word_with_an_ellipsis() -> None:
    assert shorten("short\nand sweet", 280) == "short and sweet"
    cut = shorten("word " * 100, 50)
    assert cut.endswith("word…")
    assert len(cut) <= 50


# --- settings ---------------------------------------------------------------------------------


def test_staff_notices_link_to_the_console_when_its_url_is_set() -> None:
    settings = NotifySettings.model_validate({"console_url": "https://console.acme.example/"})
    assert settings.case_link == "https://console.acme.example/cases/{case_id}"
    assert NotifySettings().case_link == NotifySettings().case_url  # the console on this machine


@pytest.mark.parametrize(
    "values",
    [
        {"console_url": "https://c.example", "case_url": "https://x.example/{case_id}"},
        {"console_url": "javascript:alert(1)"},
        {"templates_dir": "/nonexistent/templates"},
        {"staff_timezone": "Mars/Olympus"},
        {"staff_locale": "french"},
        {"senders": {"enterprise": {"staff_locale": "xx_YY"}}},
        {"senders": {"enterprise": {"colour": "red"}}},
    ],
)
def test_notify_does_not_start_with_settings_it_cannot_use(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        NotifySettings.model_validate(values)


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", None])
@pytest.mark.parametrize("locale", ["", "fr", "de", "pt-BR"])
def test_a_deadline_in_words_is_the_same_kept_as_computed_for_the_exact_moment(
    zone: str | None, locale: str
) -> None:
    """`when` keeps its words per minute: for moments anywhere in a minute, across the zones'
    daylight-saving changes, they are what Babel says of that exact moment."""
    moments = [
        datetime(2026, month, day, hour, minute, second, micro, tzinfo=UTC)
        for month, day in ((3, 8), (3, 29), (4, 5), (10, 4), (10, 25), (11, 1), (12, 31))
        for hour in (0, 1, 2, 6, 15, 23)
        for minute, second, micro in ((0, 0, 0), (0, 59, 999_999), (30, 17, 5), (59, 1, 0))
    ]
    for moment in moments:
        words = when(moment, locale=locale, timezone=zone)
        assert words == _when.__wrapped__(moment, locale, zone), moment
    # Kept: the same minute again is a hit.
    hits = _when.cache_info().hits
    when(moments[0].replace(second=31), locale=locale, timezone=zone)
    assert _when.cache_info().hits == hits + 1
