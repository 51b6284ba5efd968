"""The drafts to confirm: every text, handling step role and deadline that the content wrote itself
rather than taking from the manual, where each stands in the flow, whether a supervisor confirmed it;
and the edit that writes a supervisor's confirmation or correction into a content file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterator

import yaml
from jinja2 import Environment, nodes

from dialogs.content import OTHER_FILE, SHARED_FILE, Content, texts_in
from dialogs.policies import POLICIES_FILE
from dialogs.schema import Category, Confirmation, Provenance, Step, Text

# What a draft is: a customer-facing text, a handling step's action (read by staff), the role that acts
# at a step, or the step's deadline. The manual sets no escalation ladder, so every step's role and
# deadline are ours.
TEXT, ACTION, ROLE, DEADLINE = "text", "action", "role", "deadline"
KINDS = (TEXT, ACTION, ROLE, DEADLINE)
# The field of the content that holds a supervisor's word on each kind of value.
CONFIRM_FIELD = {"text": "confirmed", "role": "role_confirmed", "deadline_hours": "deadline_confirmed",
                 "doing": "doing_confirmed"}
CONFIRMED, CORRECTED = "confirmed", "corrected"


@dataclass(frozen=True)
class Draft:
    """One value the content wrote itself, for a supervisor to confirm or correct."""

    key: str  # file:dotted path of the value, e.g. claims.yaml:answer_points.intro.text
    file: str  # the content file, e.g. claims.yaml
    path: tuple[str | int, ...]  # of the mapping that holds the value, in the file
    field: str  # the value's key in that mapping: text, role, deadline_hours, doing
    kind: str  # text, action, role, deadline
    category: str | None  # the category or fee topic id; None for shared.yaml and other.yaml
    place: str  # where it stands in the flow, for people: 回答要点 intro（状态 intro）
    states: tuple[str, ...]  # the flow states that say or ask it (category texts), else ()
    value: str  # the text, the role id, or the deadline in hours
    confirmed: Confirmation | None  # what the content records of a supervisor's word on it


def drafts(content: Content) -> list[Draft]:
    """Every draft of the content, file by file in the menu's order (shared.yaml first)."""
    found = list(_shared_drafts(content))
    for cid in content.shared.menu:
        if cid in content.categories:
            found += _category_drafts(content, cid, content.categories[cid])
    for cid in sorted(set(content.categories) - set(content.shared.menu)):
        found += _category_drafts(content, cid, content.categories[cid])
    for path, text in texts_in(content.policies):
        if text.provenance is Provenance.draft:
            topic = str(path[0]) if path[0] in content.policies.topics else None
            found.append(_text(POLICIES_FILE, path, text, TEXT, topic, _dotted(path), ()))
    for path, text in texts_in(content.other):
        if text.provenance is Provenance.draft:
            found.append(_text(OTHER_FILE, path, text, TEXT, None, _dotted(path), ()))
    return found


def unconfirmed(content: Content) -> list[Draft]:
    return [d for d in drafts(content) if d.confirmed is None]


def _shared_drafts(content: Content) -> Iterator[Draft]:
    shared = content.shared
    for path, text in texts_in(shared):
        if path[:2] == ("handoff", "handling"):
            continue  # with its step, below
        if text.provenance is Provenance.draft:
            yield _text(SHARED_FILE, path, text, TEXT, None, _dotted(path), ())
    for role_id, role in shared.roles.items():
        yield Draft(f"{SHARED_FILE}:roles.{role_id}.doing", SHARED_FILE, ("roles", role_id), "doing", TEXT, None,
                    f"角色 {role.name} 的进度说明", (), role.doing, role.doing_confirmed)
    yield from _steps(content, SHARED_FILE, ("handoff", "handling"), shared.handoff.handling, None, shared.handoff.name)


def _category_drafts(content: Content, cid: str, category: Category) -> list[Draft]:
    file = f"{cid}.yaml"
    states = category.flow.states
    found: list[Draft] = []
    for path, text in texts_in(category):
        if path[0] == "handling" or text.provenance is not Provenance.draft:
            continue
        where: tuple[str, ...] = ()
        if path[0] == "answer_points":
            where = tuple(name for name, state in states.items() if path[1] in state.say)
            place = f"回答要点 {path[1]}"
        elif path[0] == "facts":
            where = tuple(name for name, state in states.items() if path[1] in state.collect)
            place = f"询问「{category.facts[path[1]].label}」"
        elif path[:2] == ("flow", "states"):
            where = (str(path[2]),)
            place = f"状态 {path[2]} 的提问"
        elif path[0] == "closing":
            where = tuple(name for name, state in states.items() if state.end)
            place = "结束语"
        elif path[0] == "faq":
            place = f"常见问题 {path[1]}"
        else:
            place = _dotted(path)
        if where:
            place += f"（状态 {', '.join(where)}）"
        found.append(_text(file, path, text, TEXT, cid, place, where))
    found += _steps(content, file, ("handling",), category.handling, cid, category.name)
    return found


def _steps(content: Content, file: str, at: tuple, ladder: list[Step], cid: str | None, name: str) -> Iterator[Draft]:
    roles = content.shared.roles
    for i, step in enumerate(ladder):
        path = at + (i,)
        where = f"{name} 第{i + 1}步（{roles[step.role].name if step.role in roles else step.role}）"
        if step.action.provenance is Provenance.draft:
            yield _text(file, path + ("action",), step.action, ACTION, cid, f"{where} 处理方式", ())
        yield Draft(_key(file, path, "role"), file, path, "role", ROLE, cid, f"{where} 处理角色", (), step.role,
                    step.role_confirmed)
        yield Draft(_key(file, path, "deadline_hours"), file, path, "deadline_hours", DEADLINE, cid,
                    f"{where} 期限（工作小时）", (), f"{step.deadline_hours:g}", step.deadline_confirmed)


def _text(file: str, path: tuple, text: Text, kind: str, cid: str | None, place: str, states: tuple) -> Draft:
    return Draft(_key(file, path, "text"), file, path, "text", kind, cid, place, states, text.text, text.confirmed)


def _key(file: str, path: tuple, field: str) -> str:
    return f"{file}:{_dotted(path + (field,))}"


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


# -- which drafts a message shows ---------------------------------------------------------------

# The engine drops a repeated opener from a reply that follows one starting the same way
# (dialogs/engine.py, Engine._finish): a text may be seen without it.
_OPENERS = ("您好，", "好的，")
ANY = "(?:.*?)"
# Parses as dialogs/render.py's environment does (default block and whitespace rules), never renders.
_PARSER = Environment()


@dataclass(frozen=True)
class Matcher:
    """Tells whether a sent message shows a text: the template with every value and every
    if-branch left open, searched in the message (a reply may carry more than one text)."""

    pattern: re.Pattern
    needle: str  # a piece every rendering contains: checked first, it is fast

    def shows(self, message: str) -> bool:
        return self.needle in message and self.pattern.search(message) is not None


def matcher(template: str, least: int = 4) -> Matcher | None:
    """The matcher of a template; None when its fixed wording is shorter than `least` characters
    (a bare "{{ name }}：{{ fee }}" would match nearly anything)."""
    tree = _PARSER.parse(template)
    literals: list[str] = []
    source = _regex(tree.body, literals, top=True)
    if sum(len(s.strip()) for s in _all_literals(tree)) < least:
        return None
    for opener in _OPENERS:  # where a branch or the text starts with one, it may be missing
        source = source.replace(re.escape(opener), f"(?:{re.escape(opener)})?")
        literals = [part for piece in literals for part in piece.split(opener)]
    needle = max(literals, key=len, default="").strip()
    return Matcher(re.compile(source, re.S), needle)


def _regex(body: list, literals: list[str], top: bool) -> str:
    out: list[str] = []
    for node in body:
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if isinstance(child, nodes.TemplateData):
                    out.append(re.escape(child.data))
                    if top:
                        literals.append(child.data)
                else:
                    out.append(ANY)
        elif isinstance(node, nodes.If):
            branches = [_regex(node.body, literals, False)]
            branches += [_regex(elif_.body, literals, False) for elif_ in node.elif_]
            branches.append(_regex(node.else_, literals, False))
            out.append("(?:" + "|".join(branches) + ")")
        else:  # a loop, an assignment: whatever it writes
            out.append(ANY)
    joined = "".join(out)
    while ANY + ANY in joined:
        joined = joined.replace(ANY + ANY, ANY)
    return joined.strip() if top else joined


def _all_literals(tree: nodes.Node) -> list[str]:
    return [n.data for n in tree.find_all(nodes.TemplateData)]


# -- writing a supervisor's word into a content file -----------------------------------------------

@dataclass(frozen=True)
class Change:
    """One entry of a drafts patch: a draft confirmed as it is, or corrected to a new value."""

    key: str
    file: str
    path: tuple[str | int, ...]
    field: str
    decision: str  # confirmed, corrected
    was: str  # the draft as the supervisor saw it
    value: str | None  # the correction
    by: str
    at: date
    comment: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = {"key": self.key, "file": self.file, "path": list(self.path), "field": self.field,
                "decision": self.decision, "was": self.was, "by": self.by, "at": self.at, "comment": self.comment}
        if self.decision == CORRECTED:
            data["value"] = self.value
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Change":
        at = data["at"] if isinstance(data["at"], date) else date.fromisoformat(str(data["at"]))
        return cls(str(data["key"]), str(data["file"]), tuple(data["path"]), str(data["field"]), str(data["decision"]),
                   str(data["was"]), None if data.get("value") is None else str(data["value"]), str(data["by"]), at,
                   data.get("comment"))


class PatchConflict(Exception):
    """A change that does not fit the file as it stands (the draft was edited since it was reviewed)."""


def current_value(source: str, path: tuple, field: str) -> str:
    """The value at path/field in a YAML file's text, as a string (PatchConflict if there is none)."""
    node = _find(yaml.compose(source, Loader=yaml.SafeLoader), path)
    value = _pair(node, field)
    if value is None:
        raise PatchConflict(f"{_dotted(path + (field,))} is not in the file")
    return _as_text(yaml.SafeLoader("").construct_object(value[1]))


def apply_changes(source: str, changes: list[Change]) -> str:
    """Writes the changes into one file's text, leaving the rest of it (comments, order, layout) as it
    was: each value corrected in place, and the supervisor's word beside it (confirmed: {by, on, …})."""
    root = yaml.compose(source, Loader=yaml.SafeLoader)
    edits: list[tuple[int, int, str]] = []
    inserts: dict[int, list[str]] = {}
    for change in changes:
        mapping = _find(root, change.path)
        pair = _pair(mapping, change.field)
        if pair is None:
            raise PatchConflict(f"{change.key}: not in the file")
        key_node, value_node = pair
        now = _as_text(yaml.SafeLoader("").construct_object(value_node))
        if now != change.was:
            raise PatchConflict(f"{change.key}: the file now says {now!r}, the supervisor saw {change.was!r}")
        block = value_node.style in ("|", ">")
        if change.decision == CORRECTED:
            indent = " " * (key_node.start_mark.column + 2)
            edits.append((value_node.start_mark.index, value_node.end_mark.index,
                          _scalar(change.value or "", change.field, indent) + ("\n" if block and value_node.end_mark.column == 0 else "")))
        word = _confirmation(change)
        confirm_field = CONFIRM_FIELD[change.field]
        existing = _pair(mapping, confirm_field)
        if existing is not None:
            edits.append((existing[1].start_mark.index, existing[1].end_mark.index, word))
        elif mapping.flow_style:
            position = mapping.end_mark.index - 1  # before the closing brace
            inserts.setdefault(position, []).append(f", {confirm_field}: {word}")
        else:
            last = mapping.value[-1][1]
            indent = " " * mapping.value[0][0].start_mark.column
            if last.end_mark.column == 0:  # a block scalar ends at the start of the next line
                inserts.setdefault(last.end_mark.index, []).append(f"{indent}{confirm_field}: {word}\n")
            else:
                inserts.setdefault(last.end_mark.index, []).append(f"\n{indent}{confirm_field}: {word}")
    for position, pieces in inserts.items():
        edits.append((position, position, "".join(pieces)))
    out = source
    for start, end, text in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        out = out[:start] + text + out[end:]
    return out


def _confirmation(change: Change) -> str:
    parts = [f"by: {json.dumps(change.by, ensure_ascii=False)}", f"at: {change.at.isoformat()}"]
    if change.comment:
        parts.append(f"comment: {json.dumps(change.comment, ensure_ascii=False)}")
    if change.decision == CORRECTED:
        parts.append(f"was: {json.dumps(change.was, ensure_ascii=False)}")
    return "{" + ", ".join(parts) + "}"


def _scalar(value: str, field: str, indent: str) -> str:
    """A value as YAML: a role id plain, hours a number, a text double-quoted, or a literal block when it has lines."""
    if field in ("role", "deadline_hours"):
        return value
    lines = value.split("\n")
    if len(lines) > 1 and not any(line[:1].isspace() for line in lines) and not value.endswith("\n"):
        return "|-\n" + "\n".join(indent + line if line else "" for line in lines)
    return json.dumps(value, ensure_ascii=False)


def _find(root: yaml.Node, path: tuple) -> yaml.MappingNode:
    node = root
    for part in path:
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            continue
        pair = _pair(node, str(part)) if isinstance(node, yaml.MappingNode) else None
        if pair is None:
            raise PatchConflict(f"{_dotted(path)} is not in the file")
        node = pair[1]
    if not isinstance(node, yaml.MappingNode):
        raise PatchConflict(f"{_dotted(path)} is not a mapping")
    return node


def _pair(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
