"""The theme taxonomy from YAML, validated at start-up; each error names its line."""

from importlib import resources
from pathlib import Path
from typing import Annotated

import snowballstemmer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from nps_kit.yaml_file import YamlFileError, YamlProblem, read_yaml, validate
from nps_scoring.domain.themes import RESERVED_IDS, Language, Taxonomy, Theme, clauses

SHIPPED = "themes.yaml"

Path_ = tuple[str | int, ...]


class TaxonomyError(YamlFileError):
    """The taxonomy file is not valid. The message names the file and line of each problem."""


Word = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[^\s]+$")]
Phrase = Annotated[str, Field(min_length=1, max_length=200)]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2}$")]
ThemeId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _LanguageIn(_Strict):
    stemmer: str
    negations: list[Word] = []
    contrasts: list[Word] = []
    stopwords: list[Word] = []

    @field_validator("stemmer")
    @classmethod
    def _known_stemmer(cls, value: str) -> str:
        if value not in snowballstemmer.algorithms():
            known = ", ".join(snowballstemmer.algorithms())
            raise ValueError(f"unknown Snowball stemmer {value!r}; one of {known}")
        return value


class _ThemeIn(_Strict):
    label: str = Field(min_length=1, max_length=100)
    terms: dict[str, list[Phrase]] = {}
    opinions: dict[str, list[Phrase]] = {}
    sources: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, min_length=1
    )


class _TaxonomyIn(_Strict):
    languages: dict[LanguageCode, _LanguageIn] = Field(min_length=1)
    # ResponseScored carries at most 50 themes.
    themes: dict[ThemeId, _ThemeIn] = Field(min_length=1, max_length=50)


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """The taxonomy in `path`, or the one shipped with scoring."""
    if path is None:
        text = resources.files("nps_scoring").joinpath(SHIPPED).read_text(encoding="utf-8")
        return parse_taxonomy(text, name=f"<shipped {SHIPPED}>")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TaxonomyError(
            str(path), [YamlProblem(None, "", f"cannot read the theme taxonomy: {error}")]
        ) from error
    return parse_taxonomy(text, name=str(path))


def parse_taxonomy(text: str, *, name: str) -> Taxonomy:
    """The taxonomy in `text` (every scalar read as a string: a bare `no` stays the word);
    raise `TaxonomyError` naming the line of every problem."""
    try:
        return _parse(text, name)
    except YamlFileError as error:
        raise TaxonomyError(error.name, error.problems) from None


def _parse(text: str, name: str) -> Taxonomy:
    document = read_yaml(text, name=name)
    if document.data is None:
        raise YamlFileError(name, [YamlProblem(None, "", "empty theme taxonomy")])
    parsed = validate(_TaxonomyIn, document)
    problems = _cross_check(parsed)
    if problems:
        raise document.refuse(problems)
    return _taxonomy(parsed)


def _cross_check(parsed: _TaxonomyIn) -> list[tuple[Path_, str]]:
    problems: list[tuple[Path_, str]] = []
    for theme_id, theme in parsed.themes.items():
        if theme_id in RESERVED_IDS:
            problems.append((("themes", theme_id), f"{theme_id!r} is reserved for figures"))
        if not any(theme.terms.values()) and not any(theme.opinions.values()):
            problems.append((("themes", theme_id), "a theme needs at least one term or opinion"))
        for kind, by_language in (("terms", theme.terms), ("opinions", theme.opinions)):
            for code, phrases in by_language.items():
                if code not in parsed.languages:
                    declared = ", ".join(parsed.languages)
                    problems.append(
                        (
                            ("themes", theme_id, kind, code),
                            f"language {code!r} is not declared under languages ({declared})",
                        )
                    )
                for i, phrase in enumerate(phrases):
                    if not clauses(phrase):
                        problems.append(
                            (("themes", theme_id, kind, code, i), f"{phrase!r} has no word")
                        )
    return problems


def _taxonomy(parsed: _TaxonomyIn) -> Taxonomy:
    return Taxonomy(
        languages={
            code: Language(
                code=code,
                stemmer=lang.stemmer,
                negations=frozenset(lang.negations),
                contrasts=frozenset(lang.contrasts),
                stopwords=frozenset(lang.stopwords),
            )
            for code, lang in parsed.languages.items()
        },
        themes=tuple(
            Theme(
                id=theme_id,
                label=theme.label,
                terms={c: tuple(p) for c, p in theme.terms.items()},
                opinions={c: tuple(p) for c, p in theme.opinions.items()},
                sources=None if theme.sources is None else frozenset(theme.sources),
            )
            for theme_id, theme in parsed.themes.items()
        ),
    )
