"""The theme ids of scoring's taxonomy, which a policy's `content_by_theme` must use. followup
reads only the ids (the keys under `themes:`) of the same file scoring is given
(SCORING_THEMES_FILE, one ConfigMap mounted in both); unset, those of the taxonomy shipped with
scoring."""

from pathlib import Path

from nps_followup.domain.content import SHIPPED_THEMES
from nps_kit.yaml_file import YamlFileError, YamlProblem, read_yaml


def taxonomy_themes(path: Path | None) -> frozenset[str]:
    """The theme ids of the taxonomy file at `path`; raise `YamlFileError` if it has none."""
    if path is None:
        return SHIPPED_THEMES
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlFileError(str(path), [YamlProblem(None, "", f"cannot read: {exc}")]) from None
    document = read_yaml(text, name=str(path))
    themes = document.data.get("themes") if isinstance(document.data, dict) else None
    if not isinstance(themes, dict) or not themes:
        raise YamlFileError(
            str(path),
            [YamlProblem(1, "themes", "a theme taxonomy needs a mapping of themes (by id)")],
        )
    return frozenset(str(theme) for theme in themes)
