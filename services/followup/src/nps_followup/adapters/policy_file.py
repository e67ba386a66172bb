"""Reading the policy file: YAML in, a validated `Policy` out, and every error names its line.

The YAML is read with PyYAML's `BaseLoader`, which keeps every scalar a string: pydantic
then converts them by the models' types. (YAML 1.1 would otherwise read an unquoted `17:00`
as the sexagesimal integer 1020, and `no` as false.) The node tree gives the line of each
key and item, so a validation error at `rules[0].case.contact_within` points at its line.
"""

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nps_followup.adapters.calendars import unknown_holiday_calendars
from nps_followup.domain.policy import Policy

Location = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    line: int | None
    where: str
    message: str


class PolicyError(Exception):
    """The policy file is not valid; each problem names its line."""

    def __init__(self, name: str, problems: list[PolicyProblem]) -> None:
        self.name = name
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [
            f"{self.name}:{p.line if p.line is not None else '?'}: "
            + (f"{p.where}: " if p.where else "")
            + p.message
            for p in self.problems
        ]


def _lines(node: yaml.Node, here: Location, into: dict[Location, int]) -> None:
    into.setdefault(here, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*here, str(key.value))
            into[path] = key.start_mark.line + 1
            _lines(value, path, into)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*here, index)
            into[path] = item.start_mark.line + 1
            _lines(item, path, into)


def _line_of(loc: Location, lines: dict[Location, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def parse_policy(text: str, *, name: str = "policy") -> Policy:
    """The policy in `text`; raise `PolicyError` naming the line of every problem."""
    try:
        node = yaml.compose(text, Loader=yaml.BaseLoader)
        data: Any = yaml.load(text, Loader=yaml.BaseLoader)  # noqa: S506 - BaseLoader is safe
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise PolicyError(
            name,
            [PolicyProblem(mark.line + 1 if mark else None, "", f"not valid YAML: {exc.problem}")],
        ) from None
    if node is None or not isinstance(data, dict):
        raise PolicyError(name, [PolicyProblem(1, "", "the policy must be a YAML mapping")])
    lines: dict[Location, int] = {}
    _lines(node, (), lines)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc: Location = tuple(
                # pydantic names the union/validator branch in the location; drop it
                part
                for part in error["loc"]
                if not (isinstance(part, str) and part.startswith(("function-", "tagged-union")))
            )
            message = error["msg"].removeprefix("Value error, ")
            problems.append(
                PolicyProblem(_line_of(loc, lines), ".".join(str(p) for p in loc), message)
            )
        raise PolicyError(name, problems) from None
    inconsistent = policy.inconsistencies() + unknown_holiday_calendars(policy)
    if inconsistent:
        raise PolicyError(
            name,
            [
                PolicyProblem(_line_of(loc, lines), ".".join(str(p) for p in loc), message)
                for loc, message in inconsistent
            ],
        )
    return policy


def load_policy(path: Path | None) -> Policy:
    """The policy in the file at `path`, or the default shipped with followup."""
    if path is None:
        return parse_policy(default_policy_text(), name="default-policy.yaml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), [PolicyProblem(None, "", f"cannot read: {exc}")]) from None
    return parse_policy(text, name=str(path))


def default_policy_text() -> str:
    return resources.files("nps_followup").joinpath("default-policy.yaml").read_text("utf-8")
