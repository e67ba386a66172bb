"""Comment themes against the shipped taxonomy: folding, stems, negation, languages; and the
taxonomy file's validation."""

from pathlib import Path

import pytest

from nps_scoring.adapters.taxonomy import TaxonomyError, load_taxonomy, parse_taxonomy
from nps_scoring.domain.themes import KeywordThemeClassifier, fold

SHIPPED = KeywordThemeClassifier(load_taxonomy())


@pytest.mark.parametrize(
    ("comment", "locale", "themes"),
    [
        # English, stems and case
        ("Delivery was late", None, ["delivery"]),
        ("DELIVERIES are always LATE", None, ["delivery"]),
        ("Way too expensive for what it does", None, ["price"]),
        ("The app keeps crashing and is so slow", None, ["performance", "reliability"]),
        ("Setup took far too long", None, ["onboarding"]),
        ("Support was rude", None, ["support"]),
        ("Intuitive and easy to use", None, ["ease_of_use"]),
        # negation: a negated opinion is not counted, a topic term still is
        ("The app is not slow", None, []),
        ("It isn't expensive", None, []),
        ("never slow, never buggy", None, []),
        ("not slow but support never answered", None, ["support"]),
        ("Not slow. Expensive though", None, ["price"]),
        ("no problem with the delivery", None, ["delivery"]),
        ("The price is not cheap", None, ["price"]),
        # French, accents folded either way
        ("Livraison très lente et colis abîmé", None, ["delivery", "performance"]),
        ("livraison tres lente et colis abime", None, ["delivery", "performance"]),
        ("L'application n'est pas lente", None, []),
        ("Le service client ne répond jamais", None, ["support"]),
        ("C'est trop cher", None, ["price"]),
        # Spanish
        ("La aplicación es muy lenta", None, ["performance"]),
        ("La aplicación no es lenta", None, []),
        ("El envío llegó con retraso", None, ["delivery"]),
        ("Sin embargo, es lento", None, ["performance"]),
        # Portuguese
        ("O suporte não respondeu e é muito caro", None, ["price", "support"]),
        ("Não é caro", None, []),
        # German
        ("Die Lieferung war pünktlich, aber die App stürzt ab", None, ["delivery", "reliability"]),
        ("Die App ist nicht langsam", None, []),
        ("Viel zu teuer", None, ["price"]),
        # the customer's locale chooses the language: Spanish "caro" is not an English word
        ("caro", "es", ["price"]),
        ("caro", "en", []),
        # nothing to find
        ("Great, thanks!", None, []),
        ("the car arrived", None, []),
    ],
)
def test_comment_themes(comment: str, locale: str | None, themes: list[str]) -> None:
    assert SHIPPED.themes_of(comment, source="web", locale=locale) == themes


def test_folding_drops_case_and_accents() -> None:
    assert fold("Expédition TRÈS lente, não, Qualität") == "expedition tres lente, nao, qualitat"


def test_a_theme_limited_to_sources_applies_only_to_them() -> None:
    taxonomy = parse_taxonomy(
        "languages:\n  en: {stemmer: english}\n"
        "themes:\n  checkout:\n    label: Checkout\n    sources: [shop]\n"
        "    terms: {en: [checkout]}\n",
        name="t.yaml",
    )
    classifier = KeywordThemeClassifier(taxonomy)
    assert classifier.themes_of("checkout broke", source="shop", locale=None) == ["checkout"]
    assert classifier.themes_of("checkout broke", source="app", locale=None) == []


GOOD_LANGUAGE = "languages:\n  en: {stemmer: english, negations: [not, no]}\n"


@pytest.mark.parametrize(
    ("yaml_text", "line", "message"),
    [
        pytest.param("languages: [\n", ":2", "not valid YAML", id="broken YAML"),
        pytest.param(
            "languages:\n  en: {stemmer: englsh}\nthemes:\n  a: {label: A, terms: {en: [x]}}\n",
            ":2: languages.en.stemmer",
            "unknown Snowball stemmer 'englsh'",
            id="unknown stemmer",
        ),
        pytest.param(
            GOOD_LANGUAGE + "themes:\n  Bad-Id:\n    label: A\n    terms: {en: [x]}\n",
            ":4: themes.Bad-Id",
            "should match pattern",
            id="theme id",
        ),
        pytest.param(
            GOOD_LANGUAGE + "themes:\n  a:\n    label: A\n    colour: red\n    terms: {en: [x]}\n",
            ":6: themes.a.colour",
            "Extra inputs are not permitted",
            id="misspelt key",
        ),
        pytest.param(
            GOOD_LANGUAGE + "themes:\n  a:\n    label: A\n    terms:\n      fr: [colis]\n",
            ":7: themes.a.terms.fr",
            "language 'fr' is not declared",
            id="undeclared language",
        ),
        pytest.param(
            GOOD_LANGUAGE + "themes:\n  unmatched:\n    label: A\n    terms: {en: [x]}\n",
            ":4: themes.unmatched",
            "reserved",
            id="reserved id",
        ),
        pytest.param(
            GOOD_LANGUAGE + "themes:\n  a: {label: A, terms: {en: [x]}}\n"
            "  a: {label: B, terms: {en: [y]}}\n",
            ":5: themes.a",
            "duplicate key",
            id="duplicate theme",
        ),
        pytest.param(
            GOOD_LANGUAGE + "themes:\n  a:\n    label: A\n    opinions:\n      en:\n        - ok\n"
            "        - '!!!'\n",
            ":9: themes.a.opinions.en.1",
            "has no word",
            id="phrase without a word",
        ),
        pytest.param(
            GOOD_LANGUAGE + "themes:\n  a:\n    label: A\n",
            ":4: themes.a",
            "at least one term or opinion",
            id="empty theme",
        ),
    ],
)
def test_invalid_taxonomy_is_refused_naming_the_line(
    yaml_text: str, line: str, message: str
) -> None:
    with pytest.raises(TaxonomyError) as raised:
        parse_taxonomy(yaml_text, name="t.yaml")
    assert f"t.yaml{line}" in str(raised.value)
    assert message in str(raised.value)


def test_yaml_words_like_no_stay_words() -> None:
    # YAML 1.1 reads a bare `no` as false; a negation list must keep it as the word.
    taxonomy = parse_taxonomy(
        GOOD_LANGUAGE + "themes:\n  a: {label: A, opinions: {en: [slow]}}\n", name="t.yaml"
    )
    assert "no" in taxonomy.languages["en"].negations
    assert KeywordThemeClassifier(taxonomy).themes_of("no slow", source="s", locale=None) == []


def test_a_missing_taxonomy_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match=r"missing\.yaml: cannot read"):
        load_taxonomy(tmp_path / "missing.yaml")
