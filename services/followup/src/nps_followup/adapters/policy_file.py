"""Reading the policy file: YAML in, a validated `Policy` out, and every error names its line
(the kit's YAML loader, every scalar read as a string: an unquoted `17:00` stays a time)."""

from importlib import resources
from pathlib import Path

from nps_followup.adapters.calendars import unknown_holiday_calendars
from nps_followup.domain.content import SHIPPED_THEMES, unknown_themes
from nps_followup.domain.policy import Policy
from nps_kit.yaml_file import YamlFileError, YamlProblem, read_yaml, validate

PolicyProblem = YamlProblem


class PolicyError(YamlFileError):
    """The policy file is not valid; each problem names its line."""


def parse_policy(
    text: str, *, name: str = "policy", themes: frozenset[str] = SHIPPED_THEMES
) -> Policy:
    """The policy in `text`; raise `PolicyError` naming the line of every problem. `themes`:
    the ids of scoring's taxonomy, which `content_by_theme` must use."""
    try:
        return _parse(text, name, themes)
    except YamlFileError as exc:
        raise PolicyError(exc.name, exc.problems) from None


def _parse(text: str, name: str, themes: frozenset[str]) -> Policy:
    document = read_yaml(text, name=name)
    if not isinstance(document.data, dict):
        raise YamlFileError(name, [YamlProblem(1, "", "the policy must be a YAML mapping")])
    policy = validate(Policy, document)
    inconsistent = (
        policy.inconsistencies()
        + unknown_holiday_calendars(policy)
        + unknown_themes(policy, themes)
    )
    if inconsistent:
        raise document.refuse(inconsistent)
    return policy


def load_policy(path: Path | None, *, themes: frozenset[str] = SHIPPED_THEMES) -> Policy:
    """The policy in the file at `path`, or the default shipped with followup."""
    if path is None:
        return parse_policy(default_policy_text(), name="default-policy.yaml", themes=themes)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), [PolicyProblem(None, "", f"cannot read: {exc}")]) from None
    return parse_policy(text, name=str(path), themes=themes)


def default_policy_text() -> str:
    return resources.files("nps_followup").joinpath("default-policy.yaml").read_text("utf-8")
