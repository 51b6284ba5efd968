"""The training content (scripts_yaml/training/): the scenario bank and the scoring rules, loaded and checked."""

from __future__ import annotations

import hashlib
import re
import re._parser as _parser  # the pattern's parse tree, to refuse nested repeats
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from dialogs.schema import Id, Strict, Text
from dialogs.yamlfile import DEFAULT_DIR, ContentError, ContentFileError, Problem, YamlDoc, did_you_mean, parse_model, read_yaml, shown_path

TRAINING_DIR = "training"
SCENARIOS_FILE = "scenarios.yaml"
SCORING_FILE = "scoring.yaml"
FORBIDDEN_MOVES = ("send_elsewhere", "ignore", "mislead_price", "promise_disallowed")
MIN_SCENARIOS = 3  # per category: customers of different moods

NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class Scenario(Strict):
    """One customer to practise on: what they say first, what they say next, how they react."""

    mood: Literal["calm", "angry", "confused", "hurry"]
    customer: NonEmpty  # how the trainee should address them, e.g. 王先生
    points: list[Id] | None = None  # the category's answer points this customer needs (default: all)
    opening: Text
    follow_ups: list[Text] = Field(min_length=1)  # one per later turn, in order
    objects: Text  # after a forbidden move
    contact: Text  # once, when asked for a contact
    angrier: Text  # while no result or feedback has been promised
    model_answer: Text


class Cues(Strict):
    label: NonEmpty
    cues: list[str]  # regular expressions; any one found passes
    against: list[str] = []  # regular expressions; any one found fails (courtesy)
    first_reply: bool = False  # looked for in the first reply only
    every_reply: bool = False  # every reply must pass


class Forbidden(Strict):
    label: NonEmpty
    source: NonEmpty  # where the manual forbids it
    patterns: list[str] = Field(min_length=1)
    negators: list[str] = []  # words just before or inside a match that cancel it
    customer_subject: bool = False  # cancelled when the sentence's subject before the match is 我 (not when the match names 您)
    # matched whatever stands around them (negators and 我 do not cancel them): a claim that is negative
    # in itself (不收任何费用) or that names its own subject (我把司机的电话发给您)
    absolute: list[str] = []
    # after a match, in the same sentence: the reply quotes the move to say it was wrong (…是我们不对)
    retracted_by: list[str] = []
    # before a match, in the same sentence: a condition under which the claim is true (如果是我们的责任，运费我们承担)
    excused_by: list[str] = []
    # a reply with one of these (patience, understanding, good wishes) and no action, when no earlier
    # reply took one either, commits the move: it closes the complaint without handling it
    brush_off: list[str] = []
    # what doing something about the complaint looks like; a reply with one is not brushing it off
    # and not off topic
    actions: list[str] = []
    off_topic: bool = False  # also: a first reply that makes no point and no move, and shares no word with the customer
    except_categories: list[Id] = []


class CategoryRules(Strict):
    points: dict[Id, Cues] = Field(min_length=1)
    moves: list[Id] = []


class Weights(Strict):
    points: float = Field(ge=0)
    moves: float = Field(ge=0)
    courtesy: float = Field(ge=0)


class Scoring(Strict):
    weights: Weights
    forbidden_cap: int = Field(ge=0, le=100)
    courtesy: dict[Id, Cues]
    forbidden: dict[Id, Forbidden]
    moves: dict[Id, Cues]
    categories: dict[Id, CategoryRules]


@dataclass(frozen=True)
class Training:
    scenarios: dict[str, list[Scenario]]  # by category id; scenario n is scenarios[category][n - 1]
    scoring: Scoring
    version: str = ""  # a hash of both files, stored with each session
    topics: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per category: texts that say what it is about


    def scenario(self, category: str, number: int) -> Scenario:
        return self.scenarios[category][number - 1]

    def points_of(self, category: str, scenario: Scenario) -> dict[str, Cues]:
        rules = self.scoring.categories[category].points
        return {pid: rules[pid] for pid in (scenario.points or rules)}


def load_training(directory: Path = DEFAULT_DIR, categories: set[str] | None = None,
                  topics: dict[str, tuple[str, ...]] | None = None) -> Training:
    """Reads and checks scripts_yaml/training/; categories: the complaint category ids every scenario
    and rule must belong to (None: not checked); topics: per category, texts that say what it is about
    (see topic_texts). Raises ContentError listing every problem."""
    folder = Path(directory) / TRAINING_DIR
    problems: list[Problem] = []
    docs: dict[str, YamlDoc | None] = {}
    digest = hashlib.sha256()
    for name in (SCENARIOS_FILE, SCORING_FILE):
        path = folder / name
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes())
        if not path.exists():
            problems.append(Problem(shown_path(path), None, "", "missing: the training content needs this file"))
            docs[name] = None
            continue
        try:
            docs[name] = read_yaml(path, shown_path(path))
        except ContentFileError as exc:
            problems.append(exc.problem)
            docs[name] = None
    scoring = parse_model(docs[SCORING_FILE], Scoring, problems)
    scenarios: dict[str, list[Scenario]] = {}
    doc = docs[SCENARIOS_FILE]
    if doc is not None:
        if not isinstance(doc.data, dict):
            problems.append(doc.problem((), "expected a mapping of category ids to lists of scenarios"))
        else:
            for category, items in doc.data.items():
                if not isinstance(items, list):
                    problems.append(doc.problem((category,), "expected a list of scenarios"))
                    continue
                parsed = [_scenario(doc, (category, i), item, problems) for i, item in enumerate(items)]
                scenarios[category] = [s for s in parsed if s is not None]
                if len(items) < MIN_SCENARIOS:
                    problems.append(doc.problem((category,), f"needs at least {MIN_SCENARIOS} scenarios, has {len(items)}"))
    if scoring is not None:
        problems += _check_scoring(scoring, docs[SCORING_FILE], categories)
        if doc is not None:
            problems += _check_scenarios(scenarios, scoring, doc, categories)
    if problems:
        raise ContentError(problems)
    assert scoring is not None
    return Training(scenarios, scoring, f"training+{digest.hexdigest()[:10]}", dict(topics or {}))


def topic_texts(content) -> dict[str, tuple[str, ...]]:
    """Per category of the content (dialogs.content.Content): its name, menu label, example messages
    and answer points: what a reply that is on the complaint shares words with."""
    return {cid: (c.name, c.menu_label, *c.examples, *(t.text for t in c.answer_points.values()))
            for cid, c in content.categories.items()}


def _scenario(doc: YamlDoc, at: tuple, item, problems: list[Problem]) -> Scenario | None:
    # Parsed one by one so each problem carries its scenario's path and line.
    inner = YamlDoc(doc.file, item, {path[len(at):]: line for path, line in doc.lines.items() if path[:len(at)] == at})
    before = len(problems)
    scenario = parse_model(inner, Scenario, problems)
    for i in range(before, len(problems)):
        p = problems[i]
        problems[i] = Problem(p.file, p.line, ".".join(filter(None, [f"{at[0]}[{at[1]}]", p.field])), p.message)
    return scenario


def _nested_repeat(tree, inside: bool = False) -> bool:
    """Whether a parsed pattern repeats something that itself repeats ((a+)+, (x?){2,}): such patterns
    can take exponential time on a long reply."""
    for op, av in tree:
        if op in (_parser.MAX_REPEAT, _parser.MIN_REPEAT, getattr(_parser, "POSSESSIVE_REPEAT", None)):
            low, high, sub = av
            if inside or _nested_repeat(sub, high > 1):
                return True
        elif op == _parser.SUBPATTERN and _nested_repeat(av[-1], inside):
            return True
        elif op == _parser.BRANCH and any(_nested_repeat(b, inside) for b in av[1]):
            return True
        elif op in (_parser.ASSERT, _parser.ASSERT_NOT) and _nested_repeat(av[1], inside):
            return True
    return False


def _regex_problems(doc: YamlDoc | None, path: tuple, patterns: list[str]) -> list[Problem]:
    out = []
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
            message = ("a repeat inside a repeated group: keep patterns linear (it can take exponential time on a long reply)"
                       if _nested_repeat(_parser.parse(pattern)) else None)
        except re.error as exc:
            message = f"not a valid regular expression: {exc}"
        if message:
            out.append(doc.problem(path + (i,), message) if doc else Problem(SCORING_FILE, None, str(path), message))
    return out


def _check_scoring(scoring: Scoring, doc: YamlDoc | None, categories: set[str] | None) -> list[Problem]:
    problems: list[Problem] = []
    where = doc.problem if doc else (lambda path, message: Problem(SCORING_FILE, None, str(path), message))
    for cid, cues in scoring.courtesy.items():
        problems += _regex_problems(doc, ("courtesy", cid, "cues"), cues.cues)
        problems += _regex_problems(doc, ("courtesy", cid, "against"), cues.against)
    for mid, move in scoring.moves.items():
        problems += _regex_problems(doc, ("moves", mid, "cues"), move.cues)
    for fid, forbidden in scoring.forbidden.items():
        for name in ("patterns", "absolute", "retracted_by", "excused_by", "brush_off", "actions"):
            problems += _regex_problems(doc, ("forbidden", fid, name), getattr(forbidden, name))
        if forbidden.brush_off and not forbidden.actions:
            problems.append(where(("forbidden", fid, "brush_off"), "brush_off needs actions: the words that show the complaint was acted on"))
        if fid not in FORBIDDEN_MOVES:
            problems.append(where(("forbidden", fid), f"unknown forbidden move (known: {', '.join(FORBIDDEN_MOVES)})"
                                  + did_you_mean(fid, FORBIDDEN_MOVES)))
    for fid in FORBIDDEN_MOVES:
        if fid not in scoring.forbidden:
            problems.append(where(("forbidden",), f"the manual's forbidden move '{fid}' has no patterns"))
    for cat, rules in scoring.categories.items():
        if categories is not None and cat not in categories:
            problems.append(where(("categories", cat), f"no category '{cat}'" + did_you_mean(cat, categories)))
        for pid, point in rules.points.items():
            problems += _regex_problems(doc, ("categories", cat, "points", pid, "cues"), point.cues)
        for i, mid in enumerate(rules.moves):
            if mid not in scoring.moves:
                problems.append(where(("categories", cat, "moves", i), f"unknown move '{mid}'" + did_you_mean(mid, scoring.moves)))
    return problems


def _check_scenarios(scenarios: dict[str, list[Scenario]], scoring: Scoring, doc: YamlDoc,
                     categories: set[str] | None) -> list[Problem]:
    problems: list[Problem] = []
    for cat, items in scenarios.items():
        if cat not in scoring.categories:
            problems.append(doc.problem((cat,), f"no scoring rules for category '{cat}' in {SCORING_FILE}"
                                        + did_you_mean(cat, scoring.categories)))
            continue
        if categories is not None and cat not in categories:
            problems.append(doc.problem((cat,), f"no category '{cat}'" + did_you_mean(cat, categories)))
        known = scoring.categories[cat].points
        for i, scenario in enumerate(items):
            for j, pid in enumerate(scenario.points or []):
                if pid not in known:
                    problems.append(doc.problem((cat, i, "points", j), f"category '{cat}' has no answer point '{pid}'"
                                                + did_you_mean(pid, known)))
    for cat in scoring.categories:
        if cat not in scenarios:
            problems.append(doc.problem((), f"category '{cat}' has scoring rules but no scenarios"))
    return problems
