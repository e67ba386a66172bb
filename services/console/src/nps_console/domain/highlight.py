"""A comment cut into pieces for the case page: the words scoring matched to a theme are
marked, and the rest is plain text.

Scoring gives spans (start, end, theme) into the comment as written, in code points (Python's
string indices), one per phrase matched; two themes' phrases may share words. Overlapping
spans become one marked piece naming every theme in it, so no word is marked twice and the
page never nests one mark in another. A span that does not fit the comment (a comment
edited since, or a bad answer) is left out rather than cut the text wrongly."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    #: The themes of the words, in the order found; () for plain text.
    themes: tuple[str, ...] = ()


def highlighted(comment: str, spans: Iterable[Mapping[str, Any]] | None) -> list[Piece]:
    """`comment` as pieces whose texts join back into it exactly."""
    usable = sorted(
        (s["start"], s["end"], str(s["theme"]))
        for s in spans or ()
        if isinstance(s.get("start"), int)
        and isinstance(s.get("end"), int)
        and 0 <= s["start"] < s["end"] <= len(comment)
        and s.get("theme")
    )
    merged: list[tuple[int, int, list[str]]] = []
    for start, end, theme in usable:
        if merged and start < merged[-1][1]:
            first, last, themes = merged[-1]
            merged[-1] = (first, max(last, end), themes if theme in themes else [*themes, theme])
        else:
            merged.append((start, end, [theme]))
    pieces: list[Piece] = []
    at = 0
    for start, end, themes in merged:
        if start > at:
            pieces.append(Piece(comment[at:start]))
        pieces.append(Piece(comment[start:end], tuple(themes)))
        at = end
    if at < len(comment):
        pieces.append(Piece(comment[at:]))
    return pieces
