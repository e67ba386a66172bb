"""Reading an operator's YAML file into a validated pydantic model, every problem named by its
file and line: one loader for ingest's sources file, followup's policy and scoring's theme
taxonomy.

- A syntax error names the line where the parser stopped.
- A key written twice in one mapping is refused (PyYAML would silently keep the last).
- A validation error names the line of the key or item at fault (or of its nearest ancestor,
  where pydantic's location has steps the YAML does not, such as a union's branch).
- With `typed=False` every scalar stays a string and pydantic converts it by the model's
  types: YAML 1.1 would otherwise read an unquoted `17:00` as the integer 1020 and `no` as
  false. With `typed=True` scalars are YAML's safe types (`safe_load`'s reading).

A caller's own checks after validation (a rule that names an unknown team) report their
locations through `YamlDocument.refuse`, with the same lines.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

#: A path in the document: mapping keys and sequence indexes, from the top.
Location = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class YamlProblem:
    line: int | None
    #: The dotted path of the key at fault (`rules.0.case.contact_within`); "" for the file.
    where: str
    message: str


class YamlFileError(ValueError):
    """A YAML file that is not valid; `problems` name the line of each."""

    def __init__(self, name: str, problems: list[YamlProblem]) -> None:
        self.name = name
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """One line per problem: `file:line: where: message`."""
        return [
            f"{self.name}{f':{p.line}' if p.line is not None else ''}: "
            + (f"{p.where}: " if p.where else "")
            + p.message
            for p in self.problems
        ]


@dataclass(frozen=True, slots=True)
class YamlDocument:
    name: str
    #: Plain data: dicts, lists and scalars (None for an empty document).
    data: Any
    lines: dict[Location, int]

    def line_of(self, location: Location) -> int | None:
        """The line of `location`, or of its nearest ancestor that has one."""
        for end in range(len(location), -1, -1):
            if (found := self.lines.get(tuple(location[:end]))) is not None:
                return found
        return None

    def refuse(self, problems: Iterable[tuple[Location, str]]) -> YamlFileError:
        """The error for problems found at these locations (the caller raises it)."""
        return YamlFileError(
            self.name,
            [
                YamlProblem(self.line_of(loc), ".".join(str(p) for p in loc), message)
                for loc, message in problems
            ],
        )


def read_yaml(text: str, *, name: str, typed: bool = False) -> YamlDocument:
    """The document in `text` with the line of every key and item; raise `YamlFileError` for
    a syntax error or a repeated key. `name` (a path) is what the errors call the file."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if typed and node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlFileError(
            name,
            [YamlProblem(mark.line + 1 if mark else None, "", f"not valid YAML: {exc.problem}")],
        ) from None
    except yaml.YAMLError as exc:
        raise YamlFileError(name, [YamlProblem(None, "", f"not valid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    lines: dict[Location, int] = {}
    repeated: list[Location] = []
    if node is None:
        return YamlDocument(name, None, lines)
    plain = _walk(node, (), lines, repeated)
    document = YamlDocument(name, data if typed else plain, lines)
    if repeated:
        raise document.refuse((loc, "duplicate key") for loc in repeated)
    return document


def validate(model: type[M], document: YamlDocument) -> M:
    """`model` validated from the document; raise `YamlFileError` naming the line of every
    validation error."""
    try:
        return model.model_validate(document.data)
    except ValidationError as exc:
        raise document.refuse(
            (_location(error["loc"]), error["msg"].removeprefix("Value error, "))
            for error in exc.errors(include_url=False)
        ) from None


def load_yaml_model(model: type[M], text: str, *, name: str, typed: bool = False) -> M:
    """`read_yaml` then `validate`: the model in `text`, or `YamlFileError`."""
    return validate(model, read_yaml(text, name=name, typed=typed))


def _location(loc: tuple[int | str, ...]) -> Location:
    # pydantic names a union's or a validator's branch in the location: not a YAML key.
    return tuple(
        part
        for part in loc
        if not (isinstance(part, str) and part.startswith(("function-", "tagged-union")))
    )


def _walk(
    node: yaml.Node, here: Location, lines: dict[Location, int], repeated: list[Location]
) -> Any:
    """The node as plain data with every scalar a string, recording the line of each key and
    item, and the keys repeated in one mapping."""
    lines.setdefault(here, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            path = (*here, key)
            if key in out:
                repeated.append(path)
                lines[path] = key_node.start_mark.line + 1
                continue
            lines[path] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, path, lines, repeated)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*here, i), lines, repeated) for i, item in enumerate(node.value)]
    return str(node.value)
