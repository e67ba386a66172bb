"""The case page marks the words scoring matched to a theme: pieces that join back into the
comment, one mark per run of matched words (overlapping spans merged, naming each theme), the
theme named in words, and spans that do not fit the comment left out."""

from jinja2 import Environment, PackageLoader, select_autoescape

from nps_console import catalog
from nps_console.domain.highlight import Piece, highlighted


def span(start: int, end: int, theme: str) -> dict[str, object]:
    return {"start": start, "end": end, "theme": theme}


def test_marked_words_and_plain_text_join_back_into_the_comment() -> None:
    comment = "Livraison très lente, facture énorme"
    pieces = highlighted(comment, [span(0, 9, "delivery"), span(22, 29, "price")])
    assert pieces == [
        Piece("Livraison", ("delivery",)),
        Piece(" très lente, "),
        Piece("facture", ("price",)),
        Piece(" énorme"),
    ]
    assert "".join(p.text for p in pieces) == comment


def test_overlapping_spans_become_one_mark_naming_both_themes() -> None:
    comment = "Customer service setup took weeks"
    pieces = highlighted(
        comment, [span(9, 22, "onboarding"), span(0, 16, "support"), span(9, 16, "support")]
    )
    assert pieces == [
        Piece("Customer service setup", ("support", "onboarding")),
        Piece(" took weeks"),
    ]


def test_adjacent_spans_stay_two_marks() -> None:
    assert highlighted("ab", [span(0, 1, "x"), span(1, 2, "y")]) == [
        Piece("a", ("x",)),
        Piece("b", ("y",)),
    ]


def test_spans_that_do_not_fit_the_comment_are_left_out() -> None:
    comment = "Slow app"
    pieces = highlighted(
        comment,
        [span(5, 40, "performance"), span(-1, 3, "x"), span(3, 3, "y"), {"start": "0"}],
    )
    assert pieces == [Piece(comment)]
    assert highlighted(comment, None) == [Piece(comment)]
    assert highlighted("", [span(0, 1, "x")]) == []


def test_the_case_page_names_the_theme_in_words_inside_the_mark() -> None:
    env = Environment(
        loader=PackageLoader("nps_console", "templates"), autoescape=select_autoescape()
    )
    env.globals["t"] = catalog.t
    macro = env.get_template("marks.html").module.marked  # type: ignore[attr-defined]
    html = str(macro(highlighted("<b>price</b> too high", [span(3, 8, "price")])))
    assert html == (
        '&lt;b&gt;<mark class="theme" data-themes="price">price'
        '<span class="theme-name"> (theme: price)</span></mark>&lt;/b&gt; too high'
    )
