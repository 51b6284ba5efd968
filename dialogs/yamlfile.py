"""Reading YAML content files with the line of every value, and no silent duplicate keys."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    import yaml

Path_ = tuple[str | int, ...]
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "scripts_yaml"


@dataclass
class Problem:
    """One thing wrong in a content file, located well enough to fix it."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field or '(file)'}: {self.message}"


@dataclass
class YamlDoc:
    """A parsed file: its data, and the line (1-based) where each path starts."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        """Returns the line of the deepest known prefix of path."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def problem(self, path: Path_, message: str) -> Problem:
        return Problem(self.file, self.line_of(path), dotted(path), message)


class ContentFileError(Exception):
    """A file that cannot even be parsed."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def dotted(path: Path_) -> str:
    """Renders ('handling', 0, 'role') as handling[0].role."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_yaml(path: Path, shown_as: str) -> YamlDoc:
    """Parses one file; a syntax error or a duplicate key raises ContentFileError."""
    # Imported here: a start whose content is cached (dialogs.content) reads no YAML, nor imports PyYAML.
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        try:
            # libyaml's parser when PyYAML has it (several times faster); both report the same lines.
            node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            node = yaml.compose(text, Loader=yaml.SafeLoader)  # its messages say what it found, and where
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ContentFileError(Problem(shown_as, line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}"))
    doc = YamlDoc(shown_as, None)
    if node is None:
        return doc
    doc.data = _build(node, (), doc)
    return doc


def _build(node: yaml.Node, path: Path_, doc: YamlDoc) -> Any:
    import yaml

    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if key in out:
                raise ContentFileError(
                    Problem(doc.file, key_node.start_mark.line + 1, dotted(path + (key,)),
                            "duplicate key (YAML would silently keep only the last one)")
                )
            doc.lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, path + (key,), doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), doc) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    """Builds a plain value (a scalar, or a complex key) with PyYAML's safe rules."""
    import yaml

    return yaml.SafeLoader("").construct_object(node, deep=True)


class ContentError(Exception):
    """The content is invalid; problems lists each one with file, line and field."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def read_required(path: Path, needed_by: str) -> YamlDoc:
    """Parses a content file that must exist; ContentError (file, line) when it is missing or unreadable."""
    shown = shown_path(path)
    if not path.exists():
        raise ContentError([Problem(shown, None, "", f"missing: {needed_by} needs this file")])
    try:
        return read_yaml(path, shown)
    except ContentFileError as exc:
        raise ContentError([exc.problem])


def shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def parse_model(doc: YamlDoc | None, model: type[BaseModel], problems: list[Problem]) -> Any:
    if doc is None:
        return None
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), "expected a mapping of fields at the top of the file"))
        return None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            message = err["msg"]
            if err["type"] == "missing":
                message = "missing required field"
            elif err["type"] == "value_error":
                message = str(err["ctx"]["error"])
            elif err["type"] == "extra_forbidden":
                known = list(_fields_at(model, loc[:-1]))
                message = "unknown field" + did_you_mean(str(loc[-1]), known)
            problems.append(doc.problem(loc, message))
        return None


def _fields_at(model: type[BaseModel], loc: tuple) -> Iterator[str]:
    """Yields the field names allowed at a location, for 'did you mean' hints."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            current = None
            continue
        current = _model_in(field.annotation)
    if current is not None and hasattr(current, "model_fields"):
        yield from current.model_fields


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def did_you_mean(word: str, candidates: Any) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
