"""Comment themes: what a customer's comment is about, matched against a taxonomy.

Semantics (also in the README):

- Text is folded before matching: case (`casefold`), accents (Unicode NFKD with combining
  marks dropped: "Expédition" = "expedition", "não" = "nao"), and each word is reduced to
  its stem by the Snowball stemmer of the language ("deliveries" = "delivery").
- A theme has **terms**, which name the topic ("delivery", "invoice", "support"), and
  **opinions**, words that carry a judgement about it ("slow", "expensive", "buggy",
  "intuitive"). A term counts however it is used: "no answer from support" is about support.
  An opinion counts only when it is not negated: "not slow" and "pas cher" are not counted
  for performance or price, and they are not flipped into the opposite either. Themes carry
  no polarity (the score's segment does), so a negated opinion — faint praise or a
  complaint, depending on the word — would otherwise be read as a complaint among detractors.
- An opinion is negated when one of the language's negation words (not, never, without, pas,
  sin, não, nicht, kein…) stands within the `NEGATION_WINDOW` words before it, in the same
  clause: punctuation and contrast words (but, mais, pero, aber…) end a negation's reach.
- Which languages: the customer's locale if the taxonomy has it; otherwise the languages whose
  common words (stopwords) occur most in the comment; otherwise (a one-word comment) all.
- A comment that matches nothing has no themes (`[]`): figures count it as `unmatched`, so
  the taxonomy can be improved.
"""

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import snowballstemmer

#: How many words before an opinion a negation word reaches.
NEGATION_WINDOW = 3

#: Theme ids that figures use for comments without a theme and responses without a comment;
#: a taxonomy cannot define them.
UNMATCHED = "unmatched"
NO_COMMENT = "no_comment"
RESERVED_IDS = frozenset({UNMATCHED, NO_COMMENT})

_CACHE_LIMIT = 100_000


class ThemeClassifier(Protocol):
    """Finds the themes of a comment. The keyword classifier below is one; a model-based one
    can replace it in the composition root."""

    def themes_of(self, comment: str, *, source: str, locale: str | None) -> list[str]:
        """Sorted ids of the themes of `comment` (a response's from `source`, by a customer
        whose preferred language is `locale`, if known); [] when it matches none."""
        ...

    def spans_of(self, comment: str, *, source: str, locale: str | None) -> list["ThemeSpan"]:
        """Where in `comment` each theme was found: the words matched, as offsets into the
        comment as given (Python string indices, code points), one span per match, sorted;
        spans may overlap when phrases of two themes share words."""
        ...


@dataclass(frozen=True, slots=True, order=True)
class ThemeSpan:
    """`comment[start:end]` is a phrase of `theme`'s (a term, or a non-negated opinion)."""

    start: int
    end: int
    theme: str


def fold(text: str) -> str:
    """Case and accents folded: "Expédition TRÈS lente" → "expedition tres lente"."""
    if text.isascii():
        return text.casefold()  # nothing to decompose: most comments, at a tenth of the cost
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_CLAUSE = re.compile(r"[.,;:!?()\[\]\n\r\t\"“”«»¡¿…/|-]+")
_WORD = re.compile(r"\w+")
# English contractions carry the negation inside the word: "isn't" → "is not".
_NT = re.compile(r"n['\u2019]t\b")


def clauses(text: str) -> list[list[str]]:
    """The folded words of `text`, clause by clause."""
    folded = _NT.sub(" not", fold(text))
    return [words for part in _CLAUSE.split(folded) if (words := _WORD.findall(part))]


@dataclass(frozen=True, slots=True)
class Word:
    folded: str
    #: Where the word is in the text as given: text[start:end].
    start: int
    end: int


def clauses_with_offsets(text: str) -> list[list[Word]]:
    """`clauses(text)`, each word with where it stands in `text`: folding changes lengths
    ("ß" → "ss", "é" written as e + a combining accent → "e", "isn't" → "is not"), so each
    folded character remembers the character of `text` it came from."""
    folded: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        for c in unicodedata.normalize("NFKD", char.casefold()):
            if not unicodedata.combining(c):
                folded.append(c)
                origin.append(i)
    flat = "".join(folded)
    # "n't" → " not", as clauses() does; the inserted characters come from the apostrophe's.
    pieces: list[str] = []
    origins: list[int] = []
    at = 0
    for m in _NT.finditer(flat):
        pieces.append(flat[at : m.start()])
        origins.extend(origin[at : m.start()])
        pieces.append(" not")
        origins.extend([origin[m.start()]] * 4)
        at = m.end()
    pieces.append(flat[at:])
    origins.extend(origin[at:])
    flat = "".join(pieces)
    result: list[list[Word]] = []
    at = 0
    for separator in [*_CLAUSE.finditer(flat), None]:
        until = len(flat) if separator is None else separator.start()
        words = []
        for m in _WORD.finditer(flat, at, until):
            end = origins[m.end() - 1] + 1
            while end < len(text) and unicodedata.combining(text[end]):
                end += 1  # the accents written after the word's last letter are part of it
            words.append(Word(m.group(), origins[m.start()], end))
        if words:
            result.append(words)
        if separator is not None:
            at = separator.end()
    return result


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    stemmer: str
    negations: frozenset[str]
    contrasts: frozenset[str]
    stopwords: frozenset[str]


@dataclass(frozen=True, slots=True)
class Theme:
    id: str
    label: str
    #: Phrases by language code, as written in the taxonomy.
    terms: Mapping[str, tuple[str, ...]]
    opinions: Mapping[str, tuple[str, ...]]
    #: The sources whose comments it applies to; None: every source.
    sources: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Taxonomy:
    languages: Mapping[str, Language]
    themes: tuple[Theme, ...]

    def __post_init__(self) -> None:
        ids = [t.id for t in self.themes]
        if len(set(ids)) != len(ids):
            raise ValueError("theme ids must be unique")
        if reserved := RESERVED_IDS & set(ids):
            raise ValueError(f"theme ids {sorted(reserved)} are reserved")
        for theme in self.themes:
            for code in {*theme.terms, *theme.opinions}:
                if code not in self.languages:
                    raise ValueError(f"theme {theme.id}: unknown language {code!r}")


@dataclass(frozen=True, slots=True)
class _Phrase:
    stems: tuple[str, ...]
    theme: str
    opinion: bool
    sources: frozenset[str] | None


class _Stemmer:
    def __init__(self, algorithm: str) -> None:
        self._stemmer = snowballstemmer.stemmer(algorithm)
        self._cache: dict[str, str] = {}

    def __call__(self, word: str) -> str:
        # A Snowball stem costs ~80 µs in pure Python; comments repeat their words a lot.
        stem = self._cache.get(word)
        if stem is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            stem = self._cache[word] = str(self._stemmer.stemWord(word))
        return stem


class KeywordThemeClassifier:
    """Matches stemmed, folded phrases of a `Taxonomy` (see the module's docstring)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self._stemmers = {c: _Stemmer(lang.stemmer) for c, lang in taxonomy.languages.items()}
        # By language, then by a phrase's first stem: the phrases that start with it.
        self._index: dict[str, dict[str, list[_Phrase]]] = {c: {} for c in taxonomy.languages}
        for theme in taxonomy.themes:
            for opinion, phrases_by_language in ((False, theme.terms), (True, theme.opinions)):
                for code, phrases in phrases_by_language.items():
                    stem = self._stemmers[code]
                    for phrase in phrases:
                        words = [w for clause in clauses(phrase) for w in clause]
                        if not words:
                            raise ValueError(f"theme {theme.id}: empty phrase {phrase!r}")
                        stems = tuple(stem(w) for w in words)
                        self._index[code].setdefault(stems[0], []).append(
                            _Phrase(stems, theme.id, opinion, theme.sources)
                        )
        negations: set[str] = set()
        contrasts: set[str] = set()
        for lang in taxonomy.languages.values():
            negations |= {fold(w) for w in lang.negations}
            contrasts |= {fold(w) for w in lang.contrasts}
        # Negation words of every language: comments mix languages, and none of these is an
        # ordinary word in another of the shipped languages.
        self._negations = frozenset(negations)
        self._contrasts = frozenset(contrasts)
        # By stopword, the languages it is a stopword of: one look-up per word of a comment,
        # not one per word and language.
        self._stop_languages: dict[str, list[str]] = {}
        for code, lang in taxonomy.languages.items():
            for word in {fold(w) for w in lang.stopwords}:
                self._stop_languages.setdefault(word, []).append(code)

    def languages_for(self, words: list[str], locale: str | None) -> list[str]:
        if locale is not None and (code := locale.split("-")[0]) in self._index:
            return [code]
        hits = dict.fromkeys(self._index, 0)
        for word in words:
            for code in self._stop_languages.get(word, ()):
                hits[code] += 1
        best = max(hits.values(), default=0)
        if best == 0:
            return list(self._index)
        return [code for code, n in hits.items() if n == best]

    def themes_of(self, comment: str, *, source: str, locale: str | None) -> list[str]:
        parts = clauses(comment)
        return sorted({theme for _, _, _, theme in self._matches(parts, source, locale)})

    def spans_of(self, comment: str, *, source: str, locale: str | None) -> list[ThemeSpan]:
        parts = clauses_with_offsets(comment)
        words = [[w.folded for w in part] for part in parts]
        return sorted(
            {
                ThemeSpan(parts[clause][first].start, parts[clause][last].end, theme)
                for clause, first, last, theme in self._matches(words, source, locale)
            }
        )

    def _matches(
        self, parts: list[list[str]], source: str, locale: str | None
    ) -> Iterator[tuple[int, int, int, str]]:
        """(clause, first word, last word, theme) of each phrase found in the clauses."""
        for code in self.languages_for([w for part in parts for w in part], locale):
            index, stem = self._index[code], self._stemmers[code]
            for clause, words in enumerate(parts):
                stems = [stem(w) for w in words]
                for start, first in enumerate(stems):
                    for phrase in index.get(first, ()):
                        end = start + len(phrase.stems)
                        if tuple(stems[start:end]) != phrase.stems:
                            continue
                        if phrase.sources is not None and source not in phrase.sources:
                            continue
                        if phrase.opinion and self._negated(words, start):
                            continue
                        yield clause, start, end - 1, phrase.theme

    def _negated(self, words: list[str], start: int) -> bool:
        for word in reversed(words[max(0, start - NEGATION_WINDOW) : start]):
            if word in self._contrasts:
                return False
            if word in self._negations:
                return True
        return False
