"""Where in a comment its themes were found: spans into the comment as the customer wrote it,
which the console highlights. The spans must cut the original text, not the folded one."""

import unicodedata

import pytest

from nps_scoring.adapters.taxonomy import load_taxonomy, parse_taxonomy
from nps_scoring.domain.themes import KeywordThemeClassifier, ThemeSpan

SHIPPED = KeywordThemeClassifier(load_taxonomy())


def marked(comment: str, spans: list[ThemeSpan]) -> list[tuple[str, str]]:
    return [(comment[s.start : s.end], s.theme) for s in spans]


@pytest.mark.parametrize(
    ("comment", "locale", "expected"),
    [
        pytest.param(
            "Delivery was late and the price too high",
            None,
            [("Delivery", "delivery"), ("late", "delivery"), ("price", "price")],
            id="english, each phrase where it stands",
        ),
        pytest.param(
            "Expédition très lente, facture ÉNORME",
            "fr-FR",
            [("Expédition", "delivery"), ("lente", "performance"), ("facture", "price")],
            id="accents and capitals kept in the original",
        ),
        pytest.param(
            "Straße: the invoice was wrong",
            "en",
            [("invoice", "price")],
            id="a letter folded to two (ß → ss) before the match moves nothing",
        ),
        pytest.param(
            "Le colis est arrivé en retard",
            "fr",
            [("colis", "delivery"), ("en retard", "delivery")],
            id="a phrase of two words is one span",
        ),
        pytest.param(
            "The price isn't expensive",
            "en",
            [("price", "price")],
            id="a negated opinion is no span (isn't folds to is not)",
        ),
        pytest.param("Great product, thanks", None, [], id="no theme, no span"),
    ],
)
def test_spans_cut_the_comment_as_written(
    comment: str, locale: str | None, expected: list[tuple[str, str]]
) -> None:
    spans = SHIPPED.spans_of(comment, source="web", locale=locale)
    assert marked(comment, spans) == expected
    # The spans find the same themes as the classifier does.
    assert sorted({s.theme for s in spans}) == SHIPPED.themes_of(
        comment, source="web", locale=locale
    )


def test_a_decomposed_accent_stays_inside_its_word() -> None:
    """ "é" written as "e" + U+0301: the accent belongs to the span of the word it ends."""
    comment = unicodedata.normalize("NFD", "livraison ratée, colis abîmé")
    spans = SHIPPED.spans_of(comment, source="web", locale="fr")
    assert [(comment[s.start : s.end], s.theme) for s in spans] == [
        ("livraison", "delivery"),
        ("colis", "delivery"),
        (unicodedata.normalize("NFD", "abîmé"), "delivery"),
    ]


def test_overlapping_phrases_of_two_themes_give_two_spans() -> None:
    taxonomy = parse_taxonomy(
        "languages:\n  en: {stemmer: english}\n"
        "themes:\n"
        "  support:\n    label: Support\n    terms: {en: [customer service, service]}\n"
        "  onboarding:\n    label: Onboarding\n    terms: {en: [service setup]}\n",
        name="t.yaml",
    )
    classifier = KeywordThemeClassifier(taxonomy)
    comment = "Customer service setup took weeks"
    spans = classifier.spans_of(comment, source="web", locale="en")
    assert marked(comment, spans) == [
        ("Customer service", "support"),
        ("service", "support"),
        ("service setup", "onboarding"),
    ]
    assert spans == sorted(spans)
    assert [(s.start, s.end) for s in spans] == [(0, 16), (9, 16), (9, 22)]
