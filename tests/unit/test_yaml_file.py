"""The kit's one YAML-to-model loader (ingest's sources file, followup's policy, scoring's
taxonomy): every problem names its file and line, a repeated key is refused, and scalars stay
strings unless YAML's types are asked for."""

import pytest
from pydantic import BaseModel, ConfigDict

from nps_ingest.config import SourcesError, parse_sources
from nps_kit.yaml_file import YamlFileError, load_yaml_model, read_yaml


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str
    days: int = 1


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    windows: list[Window]


PLAN = """\
name: nights
windows:
  - start: 21:00
    days: 2
  - start: 08:00
"""


def problems(text: str) -> list[str]:
    with pytest.raises(YamlFileError) as refused:
        load_yaml_model(Plan, text, name="plan.yaml")
    return refused.value.lines()


def test_scalars_stay_strings_so_a_time_is_not_read_as_a_number() -> None:
    plan = load_yaml_model(Plan, PLAN, name="plan.yaml")
    assert [(w.start, w.days) for w in plan.windows] == [("21:00", 2), ("08:00", 1)]
    # YAML 1.1's own types read 21:00 as the sexagesimal 1260.
    assert read_yaml(PLAN, name="plan.yaml", typed=True).data["windows"][0]["start"] == 1260


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    days: 2", "    days: two", "plan.yaml:4: windows.0.days: Input should be"),
        ("  - start: 08:00", "  - begin: 08:00", "plan.yaml:5: windows.1.begin: Extra inputs"),
        ("name: nights", "name: [nights", "plan.yaml:2: not valid YAML"),
        ("    days: 2", "    days: 2\n    days: 3", "plan.yaml:5: windows.0.days: duplicate key"),
    ],
)
def test_every_problem_names_its_line(old: str, new: str, expected: str) -> None:
    found = problems(PLAN.replace(old, new))
    assert any(line.startswith(expected) for line in found), found


def test_a_missing_field_is_named_at_its_parent() -> None:
    assert problems("name: nights\n") == ["plan.yaml:1: windows: Field required"]


def test_the_sources_file_names_the_line_of_a_wrong_value_and_of_a_wrong_source() -> None:
    text = "sources:\n  x:\n    provider: delighted\n  y:\n    provider: zendesk\n"
    with pytest.raises(SourcesError, match=r"sources:5: sources\.y\.provider: Input should be"):
        parse_sources(text, {})
    with pytest.raises(SourcesError, match=r"sources:2: .*needs at least one secret"):
        parse_sources(text.replace("zendesk", "canonical\n    tokens: [{value: t0k3n-1234}]"), {})
