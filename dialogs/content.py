"""Loading scripts_yaml/ into checked content: schema first, then every cross-reference."""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from functools import cached_property
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel

from dialogs.folding import fold
from dialogs.policies import POLICIES_FILE, Policies, load_policies
from dialogs.render import template_problems
from dialogs.schema import Category, Fact, Flow, OtherTopic, Shared, State, Text
from dialogs.yamlfile import DEFAULT_DIR
from dialogs.yamlfile import ContentError, ContentFileError, Problem, YamlDoc, did_you_mean, parse_model, read_yaml, shown_path

SHARED_FILE = "shared.yaml"
# Files in scripts_yaml/ that are not complaint categories: fee and policy topics, off-topic examples.
OTHER_FILE = "other.yaml"
NOT_CATEGORIES = {SHARED_FILE, POLICIES_FILE, OTHER_FILE}
HANDOFF = "handoff"
EXAMPLES_DIR = "examples"  # more router training messages per label, kept apart from the flows  # the kind of a case opened because the customer asked for a person, outside any complaint


def _MODEL_MODULES() -> list[Any]:  # noqa: N802 - the modules whose classes a kept Content is made of
    import sys

    from dialogs import policies, schema

    return [schema, policies, sys.modules[__name__]]


@dataclass(frozen=True)
class Content:
    shared: Shared
    categories: dict[str, Category]
    policies: Policies  # the fee and policy topics
    other: OtherTopic  # off-topic examples, and the answer to them
    version: str  # the shared version plus a hash of every file, stored on each case
    extra_examples: dict[str, list[str]] = field(default_factory=dict)  # examples/*.yaml: more messages per label

    def examples(self) -> dict[str, list[str]]:
        """The router's training messages by label (see training_examples)."""
        return training_examples(self.categories, self.policies, self.other, self.extra_examples)

    @cached_property
    def handoff(self) -> Category:
        """The handoff case kind, shaped as a category so cases of every kind are handled alike."""
        return _handoff_kind(self.shared)

    @cached_property
    def case_kinds(self) -> dict[str, Category]:
        """Every kind of case: the complaint categories, and the handoff."""
        return {**self.categories, HANDOFF: self.handoff}


def load_content(directory: Path = DEFAULT_DIR, cache: Path | None = None) -> Content:
    """Reads and checks every file; raises ContentError listing all problems found. cache: a folder where
    content already checked is kept by its files' digest, so that a start with unchanged content skips
    the reading and checking (most of a second)."""
    directory = Path(directory)
    digest = hashlib.sha256()
    for name in (SHARED_FILE, POLICIES_FILE, OTHER_FILE):
        if not (directory / name).exists():
            raise ContentError([Problem(str(directory / name), None, "", "missing: every content folder needs this file")])
    for path in sorted([*directory.glob("*.yaml"), *directory.glob(f"{EXAMPLES_DIR}/*.yaml")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    # Kept under the digest of the content and of the code that models it: a model changed in code is a new key.
    shape = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in _MODEL_MODULES())).hexdigest()[:10]
    kept = cache / f"content-{shape}-{digest.hexdigest()[:20]}.pickle" if cache else None
    if kept is not None and kept.exists():
        try:
            return pickle.loads(kept.read_bytes())
        except Exception:  # from another kefu, or cut short: read the files again
            pass
    content = _read_and_check(directory, digest)
    if kept is not None:
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            partial = kept.with_suffix(f".{os.getpid()}.partial")
            partial.write_bytes(pickle.dumps(content))
            partial.replace(kept)  # whole or not at all: a reader never sees half a file
        except OSError:
            pass  # no cache: the next start reads the files again
    return content


def _read_and_check(directory: Path, digest: Any) -> Content:
    problems: list[Problem] = []
    docs: dict[str, YamlDoc] = {}
    extra = _extra_examples(directory / EXAMPLES_DIR, problems)
    files = sorted(p for p in directory.glob("*.yaml") if p.name not in NOT_CATEGORIES - {SHARED_FILE})
    other = None
    try:
        other = parse_model(read_yaml(directory / OTHER_FILE, shown_path(directory / OTHER_FILE)), OtherTopic, problems)
    except ContentFileError as exc:
        problems.append(exc.problem)
    policies = None
    try:
        policies = load_policies(directory / POLICIES_FILE)
    except ContentError as exc:
        problems += exc.problems
    for path in files:
        try:
            docs[path.stem] = read_yaml(path, shown_path(path))
        except ContentFileError as exc:
            problems.append(exc.problem)

    shared_doc = docs.pop("shared", None)
    shared = parse_model(shared_doc, Shared, problems)
    categories: dict[str, Category] = {}
    for stem, doc in docs.items():
        category = parse_model(doc, Category, problems)
        if category is not None:
            categories[stem] = category
    if shared is not None:
        # Every file counts as a category id, parsed or not, so one broken file is reported once.
        stems = {p.stem for p in files} - {Path(SHARED_FILE).stem}
        problems += _check_shared(shared, shared_doc, stems, set(policies.topics) if policies else set())
        for stem, category in categories.items():
            problems += _check_category(category, stem, docs[stem], shared, stems)
    if policies is not None:
        problems += _check_disputes(policies, categories, directory / POLICIES_FILE)
        for topic_id in set(policies.topics) & set(categories):
            problems.append(Problem(shown_path(directory / POLICIES_FILE), None, topic_id, "topic id is also a category id"))
    if policies is not None:
        # every category file counts, parsed or not, so a broken file is not reported twice
        labels = {p.stem for p in files} - {Path(SHARED_FILE).stem} | set(policies.topics) | {"other", "vague"}
        for label, (path, items) in extra.items():
            if label not in labels:
                problems.append(Problem(path, None, label, f"no category or topic '{label}'" + did_you_mean(label, labels)))
    if not problems:
        problems += _examples_of_several_labels(categories, policies, other, directory, extra)
    if problems:
        raise ContentError(problems)
    assert shared is not None and policies is not None and other is not None
    return Content(shared, categories, policies, other, f"{shared.version}+{digest.hexdigest()[:10]}",
                   {label: items for label, (_, items) in extra.items()})


def _check_disputes(policies: Policies, categories: dict[str, Category], path: Path) -> list[Problem]:
    """A disputed charge's `check` names a category whose flow says where the check starts, or the handoff
    (a person looks into it)."""
    problems = []
    for topic_id, topic in policies.topics.items():
        for answer_id, answer in topic.answers.items():
            category = categories.get(answer.check) if answer.check else None
            if answer.check in (None, HANDOFF) or (category is not None and category.flow.check is not None):
                continue
            why = (f"category '{answer.check}' has no 'flow.check' state to start the check at" if category is not None
                   else f"no category '{answer.check}'" + did_you_mean(answer.check, categories))
            problems.append(read_yaml(path, shown_path(path)).problem((topic_id, "answers", answer_id, "check"), why))
    return problems


def _handoff_kind(shared: Shared) -> Category:
    handoff = shared.handoff
    label = Text(text=handoff.name, provenance="draft")
    facts = {fid: Fact(type="text", label=name, prompt=label) for fid, name in handoff.fact_labels.items()}
    flow = Flow(initial="open", states={"open": State(open_case=True, goto="done"), "done": State(end=True)})
    # Built, not validated: a handoff has no answer points to say and no examples to route by.
    return Category.model_construct(id=HANDOFF, name=handoff.name, menu_label=handoff.name, manual_section="",
                                    examples=[], answer_points={}, handling=handoff.handling, facts=facts, faq={},
                                    closing=label, flow=flow)


def training_examples(categories: dict[str, Category], policies: Policies, other: OtherTopic,
                      extra: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """The example messages by label: categories and topics by id, off-topic messages as 'other',
    complaints that name no category as 'vague'; extra: more messages per label (examples/*.yaml)."""
    examples = {cid: list(c.examples) for cid, c in categories.items()}
    examples.update({tid: list(t.examples) for tid, t in policies.topics.items()})
    examples["other"] = list(other.examples)
    examples["vague"] = list(other.vague_examples)
    for label, items in (extra or {}).items():
        examples[label] = examples.get(label, []) + list(items)
    return examples


def _extra_examples(folder: Path, problems: list[Problem]) -> dict[str, tuple[str, list[str]]]:
    """Reads examples/*.yaml: mappings of a label to a list of example messages."""
    found: dict[str, tuple[str, list[str]]] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            doc = read_yaml(path, shown_path(path))
        except ContentFileError as exc:
            problems.append(exc.problem)
            continue
        for label, items in (doc.data or {}).items():
            if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
                problems.append(doc.problem((label,), "must be a list of example messages (text)"))
                continue
            found[label] = (shown_path(path), found.get(label, ("", []))[1] + items)
    return found


def _examples_of_several_labels(categories, policies, other, directory: Path, extra) -> list[Problem]:
    """One message may teach the router one label only (compared after folding)."""
    owners: dict[str, set[str]] = {}
    for label, items in training_examples(categories, policies, other, {k: v for k, (_, v) in extra.items()}).items():
        for item in items:
            owners.setdefault(fold(item).casefold(), set()).add(label)
    return [Problem(shown_path(directory), None, "examples", f"'{text}' is an example of several labels: {', '.join(sorted(labels))}")
            for text, labels in owners.items() if len(labels) > 1]


def texts_in(obj: Any, path: tuple = ()) -> Iterator[tuple[tuple, Text]]:
    """Yields every Text inside a parsed model, with its path in the file."""
    if isinstance(obj, Text):
        yield path, obj
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from texts_in(getattr(obj, name), path + (name,))
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from texts_in(value, path + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from texts_in(value, path + (i,))


def _check_shared(shared: Shared, doc: YamlDoc, categories: set[str], topics: set[str]) -> list[Problem]:
    problems = [doc.problem(path + ("text",), msg) for path, text in texts_in(shared) for msg in template_problems(text.text, None)]
    hours = shared.business_hours
    if shared.texts.hours is not None and not (hours.open in shared.texts.hours.text and hours.close in shared.texts.hours.text):
        # the customer is told the hours in words: they must be business_hours', not a second copy that drifts
        problems.append(doc.problem(("texts", "hours", "text"), f"does not state business_hours ({hours.open} to {hours.close})"))
    for name, fact_type in shared.fact_types.items():
        if fact_type.pattern is not None:
            try:
                re.compile(fact_type.pattern)
            except re.error as exc:
                problems.append(doc.problem(("fact_types", name, "pattern"), f"not a valid regular expression: {exc}"))
    for i, step in enumerate(shared.handoff.handling):
        if step.role not in shared.roles:
            problems.append(doc.problem(("handoff", "handling", i, "role"), f"unknown role '{step.role}'" + did_you_mean(step.role, shared.roles)))
    for role in shared.business_hours.roles:
        if role not in shared.roles:
            problems.append(doc.problem(("business_hours", "roles", role), f"unknown role '{role}'" + did_you_mean(role, shared.roles)))
    for kind in ("prefer", "covers"):
        for key, labels in getattr(shared.routing, kind).items():
            for i, label in enumerate([key, *labels]):
                if label not in categories:
                    at = ("routing", kind, key) + ((i - 1,) if i else ())
                    problems.append(doc.problem(at, f"no category '{label}'" + did_you_mean(label, categories)))
    for key, settled in shared.routing.settled.items():
        for at, label in ((("routing", "settled", key), key), (("routing", "settled", key, "to"), settled.to)):
            if label not in categories:
                problems.append(doc.problem(at, f"no category '{label}'" + did_you_mean(label, categories)))
    for whom, entry in shared.routing.about_whom.items():
        for i, label in enumerate(entry.problems):
            if label not in categories:
                problems.append(doc.problem(("routing", "about_whom", whom, "problems", i),
                                            f"no category '{label}'" + did_you_mean(label, categories)))
    for kind in ("fee_stories", "fee_questions", "case_facts"):
        for topic, labels in getattr(shared.routing, kind).items():
            if topic not in topics:
                problems.append(doc.problem(("routing", kind, topic), f"no topic '{topic}'" + did_you_mean(topic, topics)))
            for i, label in enumerate(labels):
                if label not in categories:
                    problems.append(doc.problem(("routing", kind, topic, i),
                                                f"no category '{label}'" + did_you_mean(label, categories)))
    if shared.back_label not in shared.commands.menu:
        problems.append(doc.problem(("back_label",), "must be one of the words under commands.menu, so choosing it returns to the menu"))
    for i, entry in enumerate(shared.menu):
        if entry not in categories | topics:
            problems.append(doc.problem(("menu", i), f"no category or topic '{entry}'" + did_you_mean(entry, categories | topics)))
    for stem in categories:
        if stem not in shared.menu:
            problems.append(doc.problem(("menu",), f"category '{stem}' is not on the menu"))
    if shared.reports is not None:
        for i, label in enumerate(shared.reports.damage.categories):
            if label not in categories:
                problems.append(doc.problem(("reports", "damage", "categories", i),
                                            f"no category '{label}'" + did_you_mean(label, categories)))
    return problems


def _check_category(category: Category, stem: str, doc: YamlDoc, shared: Shared, category_ids: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    add = lambda path, message: problems.append(doc.problem(path, message))  # noqa: E731

    if category.id != stem:
        add(("id",), f"must equal the file name '{stem}'")
    for path, text in texts_in(category):
        for message in template_problems(text.text, {f: fact.options for f, fact in category.facts.items()}):
            add(path + ("text",), message)
    for fact_id, fact in category.facts.items():
        for option in fact.option_words:
            if option not in (fact.options or []):
                add(("facts", fact_id, "option_words", option), f"'{option}' is not one of the fact's options"
                    + did_you_mean(option, fact.options or []))
    for i, step in enumerate(category.handling):
        if step.role not in shared.roles:
            add(("handling", i, "role"), f"unknown role '{step.role}'" + did_you_mean(step.role, shared.roles))
    for fact_id, fact in category.facts.items():
        fact_type = shared.fact_types.get(fact.type)
        if fact_type is None:
            add(("facts", fact_id, "type"), f"unknown fact type '{fact.type}'" + did_you_mean(fact.type, shared.fact_types))
        elif (fact_type.kind == "choice") != bool(fact.options):
            add(("facts", fact_id, "options"), "'options' are required for a choice fact and only allowed there")

    flow = category.flow
    states = flow.states
    if "start" in states:
        add(("flow", "states", "start"), "'start' is reserved for the engine")
    if flow.initial not in states:
        add(("flow", "initial"), f"no state '{flow.initial}'" + did_you_mean(flow.initial, states))
    if flow.check is not None and flow.check not in states:
        add(("flow", "check"), f"no state '{flow.check}'" + did_you_mean(flow.check, states))
    said, collected = set(), set()
    for name, state in states.items():
        at = ("flow", "states", name)
        for i, point in enumerate(state.say):
            said.add(point)
            if point not in category.answer_points:
                add(at + ("say", i), f"no answer point '{point}'" + did_you_mean(point, category.answer_points))
        for i, fact_id in enumerate(state.collect):
            collected.add(fact_id)
            if fact_id not in category.facts:
                add(at + ("collect", i), f"no fact '{fact_id}'" + did_you_mean(fact_id, category.facts))
        for i, option in enumerate(state.options):
            for j, fact_id in enumerate(option.given):
                if fact_id not in category.facts:
                    add(at + ("options", i, "given", j), f"no fact '{fact_id}'" + did_you_mean(fact_id, category.facts))
        for target, path in _targets(state, at):
            if target not in states:
                add(path, f"transition to missing state '{target}'" + did_you_mean(target, states))
        if state.switch_to is not None and state.switch_to not in category_ids:
            add(at + ("switch_to",), f"no category '{state.switch_to}'" + did_you_mean(state.switch_to, category_ids))
    for faq_id, answer in category.faq.items():
        for i, point in enumerate(answer.replaces):
            if point not in category.answer_points:
                add(("faq", faq_id, "replaces", i), f"no answer point '{point}'" + did_you_mean(point, category.answer_points))
    for point in category.answer_points:
        if point not in said:
            add(("answer_points", point), "answer point is never said: no state lists it under 'say'")
    for fact_id in category.facts:
        if fact_id not in collected:
            add(("facts", fact_id), "fact is never collected: no state lists it under 'collect'")

    if flow.initial in states:
        reachable = _reachable(flow.initial, states)
        for name in states:
            if name not in reachable:
                add(("flow", "states", name), f"unreachable state: no path from '{flow.initial}' leads here")
        if not any(states[n].open_case for n in reachable):
            add(("flow",), "no reachable state opens a case ('open_case: true')")
        if not any(states[n].end or states[n].switch_to for n in reachable):
            add(("flow",), "no reachable state ends the conversation ('end: true')")
        cycle = _silent_cycle(states)
        if cycle:
            add(("flow", "states", cycle[0]), "states loop with no question to the customer: " + " → ".join(cycle))
    return problems


def _targets(state, at: tuple) -> Iterator[tuple[str, tuple]]:
    if state.goto is not None:
        yield state.goto, at + ("goto",)
    for i, option in enumerate(state.options):
        yield option.goto, at + ("options", i, "goto")


def _reachable(initial: str, states: dict) -> set[str]:
    seen, todo = set(), [initial]
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        todo += [target for target, _ in _targets(states[name], ())]
    return seen


def _silent_cycle(states: dict) -> list[str] | None:
    """Finds states that pass control along by 'goto' alone, forever. A 'collect' state waits only
    until its facts are in, and facts stay, so it does not break such a loop."""
    for start in states:
        path, name = [], start
        while name in states and states[name].goto:
            if name in path:
                return path[path.index(name):] + [name]
            path.append(name)
            name = states[name].goto
    return None
