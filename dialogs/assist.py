"""The guided assistant for staff (坐席助手): what to say, what to record and what to do at each step of
a complaint a staff member is handling live, by phone or at the counter.

The staff member types what the customer says; the engine takes it as a customer message on the
category's own state machine (so routing, facts and the case are exactly a customer's), and this
module words the engine's turn for the staff member: the engine's replies are what to say, the fact
it waits for is what to record, an opened case brings the handling ladder (处理方式) with deadlines,
and the manual's basic rules are shown where they apply. Pure code: bot/assist.py loads and stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from dialogs.conversation import Conversation, Option, Turn
from dialogs.render import render, template_values, unknown_names
from dialogs.schema import Id, Strict, Text
from dialogs.yamlfile import DEFAULT_DIR, ContentError, Problem, parse_model, read_required

ASSIST_FILE = Path("staff") / "assist.yaml"
Moment = Literal["start", "answer", "record", "case", "confirm", "done"]
# The names a staff text may use (rendered by staff_text): a case number, a step, its role and deadline.
STAFF_NAMES = frozenset({"number", "step", "role", "deadline"})


class Rule(Strict):
    title: str  # the manual's title of the rule
    source: str
    hint: Text  # one line on what it means at work (our draft: the manual keeps only the titles)


class AssistTexts(Strict):
    started: Text
    say: Text
    record: Text
    record_hint: Text
    choose: Text
    do: Text
    rules: Text
    opened: Text
    confirm: Text
    confirmed: Text
    not_yet: Text
    resolve_ask: Text
    resolved: Text
    kept_open: Text
    also_opened: Text
    blank: Text
    yes_no: Text
    finished: Text
    no_case: Text
    yes_label: Text
    no_label: Text


class AssistContent(Strict):
    """scripts_yaml/staff/assist.yaml."""

    rules_per_step: Annotated[int, Field(ge=1, le=3)]
    end_words: list[str] = Field(min_length=1)
    speaker_prefixes: list[str] = []
    yes_words: list[str] = Field(min_length=1)
    no_words: list[str] = Field(min_length=1)
    rules: dict[Id, Rule] = Field(min_length=1)
    moments: dict[Moment, list[Id]]
    categories: dict[Id, list[Id]] = {}
    texts: AssistTexts


def load_assist(directory: Path = DEFAULT_DIR, categories: set[str] | None = None) -> AssistContent:
    """Reads and checks scripts_yaml/staff/assist.yaml; every rule named must exist, every category
    must be one of `categories` (None: not checked). Raises ContentError naming file, line and field."""
    doc = read_required(Path(directory) / ASSIST_FILE, "the staff assistant")
    problems: list[Problem] = []
    assist = parse_model(doc, AssistContent, problems)
    if assist is not None:
        for group, table in (("moments", assist.moments), ("categories", assist.categories)):
            for key, rule_ids in table.items():
                if group == "categories" and categories is not None and key not in categories:
                    problems.append(doc.problem((group, key), f"unknown category '{key}'"))
                for i, rule in enumerate(rule_ids):
                    if rule not in assist.rules:
                        problems.append(doc.problem((group, key, i), f"unknown rule '{rule}' (known: {', '.join(assist.rules)})"))
        for name, text in assist.texts:
            unknown = unknown_names(text.text, STAFF_NAMES)
            if unknown:
                problems.append(doc.problem(("texts", name, "text"), f"unknown name(s) {', '.join(unknown)} "
                                                                      f"(known: {', '.join(sorted(STAFF_NAMES))})"))
    if problems:
        raise ContentError(problems)
    return assist


def staff_text(text: Text, **values: object) -> str:
    """A staff-facing text, filled with the values it names."""
    return render(text.text, {name: values.get(name, "") for name in STAFF_NAMES})


@dataclass(frozen=True)
class LadderStep:
    number: int  # 1-based
    role: str
    role_name: str
    action: str
    hours: float
    deadline: datetime | None  # known for the step that acts now; later ones start when they are reached


@dataclass
class Guidance:
    """What the staff member sees after one message: each part may be empty."""

    notes: list[str] = field(default_factory=list)  # the assistant's own lines (案件已建立, 已记录)
    say: list[str] = field(default_factory=list)  # what to tell the customer
    record: str | None = None  # the fact to ask for and record now (its label)
    do: list[LadderStep] = field(default_factory=list)  # the handling ladder, once a case is opened
    rules: list[Rule] = field(default_factory=list)
    question: str | None = None  # what the assistant asks the staff member (did you finish step 1?)
    options: list[Option] = field(default_factory=list)  # the customer's possible answers, or yes/no
    ended: bool = False

    def text(self, assist: AssistContent, zone) -> str:
        """The guidance as one plain-text message (terminal and Telegram)."""
        texts = assist.texts
        lines = list(self.notes)
        if self.say:
            lines.append(f"🗣 {texts.say.text}：")
            lines += [f"  {line}" for said in self.say for line in said.splitlines()]
        if self.record:
            lines.append(f"✍️ {texts.record.text}：{self.record}（{texts.record_hint.text}）")
        if self.do:
            lines.append(f"📋 {texts.do.text}：")
            for step in self.do:
                when = (f"{step.deadline.astimezone(zone):%m月%d日 %H:%M} 前" if step.deadline is not None
                        else f"上一步到期未办结时，{step.hours:g} 个工作小时内")
                lines.append(f"  {step.number}. {step.role_name}（{when}）：{step.action}")
        if self.rules:
            lines.append(f"📌 {texts.rules.text}：")
            lines += [f"  {rule.title}——{rule.hint.text}" for rule in self.rules]
        if self.question:
            lines.append(self.question)
        if self.options:
            lines += [f"  {i}. {option.label}" for i, option in enumerate(self.options, start=1)]
        return "\n".join(lines)


def rules_for(assist: AssistContent, moments: list[str], category: str | None, shown: list[str]) -> list[Rule]:
    """The rules that apply at these moments and were not shown yet in this session (recorded in
    `shown`), at most rules_per_step: when a complaint is first answered, its category's own first."""
    wanted: list[str] = []
    for moment in moments:
        if moment == "answer":
            wanted += assist.categories.get(category or "", [])
        wanted += assist.moments.get(moment, [])  # type: ignore[call-overload]
    picked: list[Rule] = []
    for rule_id in dict.fromkeys(wanted):
        if rule_id in shown or len(picked) >= assist.rules_per_step:
            continue
        shown.append(rule_id)
        picked.append(assist.rules[rule_id])
    return picked


def read_turn(assist: AssistContent, engine, before: Conversation, after: Conversation, turn: Turn,
              shown: list[str], first: bool = False) -> Guidance:
    """Words one engine turn for the staff member: its replies to say, the fact asked, the rules."""
    guide = Guidance(say=[r.text for r in turn.replies])
    for reply in turn.replies:
        guide.options = list(reply.options) or guide.options
    asked = engine.asked_fact(after)
    if asked is not None:
        guide.record = asked[1]
    moments = ["start"] if first else []
    if after.category is not None and after.category != before.category and after.category in engine.content.categories:
        moments.append("answer")
    if asked is not None:
        moments.append("record")
    guide.rules = rules_for(assist, moments, after.category, shown)
    return guide


def ladder(engine, category_id: str, opened_at: datetime) -> list[LadderStep]:
    """A category's handling steps as the staff member will work them: the first due by its deadline
    from the opening; each later one starts when the one before it runs out unresolved."""
    category = engine.content.case_kinds[category_id]  # a complaint, or the handoff to a person
    values, roles = template_values(""), engine.content.shared.roles
    return [LadderStep(i, step.role, roles[step.role].name if step.role in roles else step.role,
                       render(step.action.text, values), step.deadline_hours,
                       engine.deadline(opened_at, step) if i == 1 else None)
            for i, step in enumerate(category.handling, start=1)]


def unprefixed(assist: AssistContent, text: str) -> str:
    """The customer's words without the staff member's "客户说：" in front."""
    stripped = text.lstrip()
    for prefix in sorted(assist.speaker_prefixes, key=len, reverse=True):
        if stripped.startswith(prefix) and len(stripped) > len(prefix):
            return stripped[len(prefix):].lstrip(" ：:，,")
    return text
