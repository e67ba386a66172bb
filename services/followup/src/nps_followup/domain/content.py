"""Passive education that fits the customer: the page an email points to, chosen by the themes
scoring found in the comment (`content_by_theme` under a rule of the policy)."""

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field

from nps_events import ContentLink, Line
from nps_events.models import WebLink

if TYPE_CHECKING:
    from nps_followup.domain.policy import Policy

#: A theme id as scoring's taxonomy writes it (and as `response.scored` carries it).
ThemeId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]

#: The themes of the taxonomy shipped with scoring (services/scoring/.../themes.yaml): what
#: a policy's themes are checked against when FOLLOWUP_THEMES_FILE does not name the
#: taxonomy in use. A test keeps the two in step.
SHIPPED_THEMES = frozenset(
    {
        "delivery",
        "price",
        "support",
        "product_quality",
        "ease_of_use",
        "onboarding",
        "performance",
        "reliability",
    }
)


class Content(BaseModel):
    """A page for the customer: the link's text, where it goes, and one optional short line."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: Line = Field(min_length=1, max_length=200)
    url: WebLink = Field(description="http or https.")
    summary: Line | None = Field(default=None, max_length=300)


def choose_content(
    themes: Iterable[str], *, by_theme: Mapping[str, Content], default: Content | None
) -> ContentLink | None:
    """The page for a comment with `themes`: the first theme *in the policy's order* that the
    comment has (the policy lists its themes by priority, since scoring sorts a comment's
    themes by name, which says nothing about what matters most); else the default (no
    comment, no theme, or only themes without content); None when there is neither."""
    found = set(themes)
    for theme, content in by_theme.items():
        if theme in found:
            return ContentLink(
                theme=theme, title=content.title, url=content.url, summary=content.summary
            )
    if default is None:
        return None
    return ContentLink(title=default.title, url=default.url, summary=default.summary)


def unknown_themes(
    policy: "Policy", taxonomy: frozenset[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Every theme of a rule's `content_by_theme` that the taxonomy does not have (it would
    never match), with where it is."""
    return [
        (
            ("rules", index, "content_by_theme", theme),
            f"theme {theme!r} is not in scoring's taxonomy ({', '.join(sorted(taxonomy))})",
        )
        for index, rule in enumerate(policy.rules)
        for theme in rule.content_by_theme
        if theme not in taxonomy
    ]
