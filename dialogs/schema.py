"""The shape of the content files in scripts_yaml/, as pydantic models."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
# transitions reserves "_" for nested states, so state names are plain words.
StateName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]*$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provenance(str, Enum):
    manual = "manual"  # taken from the manual, wording restored per the reading notes
    draft = "draft"  # written by us, for a supervisor to confirm or replace


class Text(Strict):
    """A customer-facing text (a Jinja2 template) and where it comes from."""

    text: Annotated[str, StringConstraints(min_length=1)]
    provenance: Provenance
    source: str | None = None  # the manual's section, for manual texts

    @model_validator(mode="after")
    def _manual_names_source(self) -> "Text":
        if self.provenance is Provenance.manual and not self.source:
            raise ValueError("a text taken from the manual must name its section in 'source'")
        return self


class Role(Strict):
    name: str  # shown to staff and customers, e.g. 分公司经理


class FactType(Strict):
    """How a kind of fact is checked: a pattern after normalising, a free text, or a fixed choice."""

    kind: Literal["pattern", "text", "choice"]
    entity: Literal["waybills", "phones"] | None = None  # filled from this kind of entity found in any message
    pattern: str | None = None
    strip: str = ""  # characters removed before matching, e.g. spaces and dashes in a waybill number
    min_length: int = 1
    max_length: int = 2000
    invalid: Text

    @model_validator(mode="after")
    def _pattern_for_pattern_kind(self) -> "FactType":
        if (self.kind == "pattern") != (self.pattern is not None):
            raise ValueError("'pattern' is required for kind 'pattern' and only allowed there")
        return self


class Commands(Strict):
    """Words that trigger a global move from any state."""

    menu: list[str]
    cancel: list[str]
    human: list[str]
    help: list[str]
    bye: list[str]
    hello: list[str]
    status: list[str]


class SharedTexts(Strict):
    greeting: Text
    menu_prompt: Text
    fallback: Text
    choose_again: Text
    empty_message: Text
    stale_choice: Text
    goodbye: Text
    help: Text
    cancelled: Text
    human: Text
    case_opened: Text
    anything_else: Text
    status_ask: Text
    status: Text
    status_not_found: Text
    topic_more: Text
    topic_not_understood: Text
    which_one: Text
    rate_ask: Text
    rate_thanks: Text
    rate_low_ask: Text
    rate_reason_thanks: Text
    also_mentioned: Text
    also_now: Text
    topic_changed: Text
    # The Telegram channel's own texts (bot/telegram.py, bot/casework.py).
    too_fast: Text
    unsupported_message: Text
    attachment_saved: Text
    attachment_kept: Text
    relayed: Text
    staff_reply: Text
    staff_only: Text
    system_error: Text


class Routing(Strict):
    """How free text is understood (see dialogs/intents.py)."""

    threshold: float = Field(gt=0, lt=1)  # least confidence to act on the router's label
    switch_threshold: float = Field(gt=0, lt=1)  # least confidence to leave a conversation unannounced
    also_threshold: float = Field(gt=0, lt=1)  # least confidence of a clause read as a second complaint
    joiners: list[str]  # words that join two complaints in one message (而且, 还有)
    change_words: list[str]  # words that announce a change of topic mid-conversation (算了, 换个问题)
    places: list[str] = []


class Shared(Strict):
    """scripts_yaml/shared.yaml: texts, roles and rules used by every category."""

    version: str
    salutation_default: str
    timezone: str
    texts: SharedTexts
    roles: dict[Id, Role]
    fact_types: dict[Id, FactType]
    case_statuses: dict[Id, str]  # how a case's status is shown to customers
    back_label: str  # the option that returns to the main menu; must be one of commands.menu
    rating_reasons: list[str] = Field(min_length=1)  # offered when a customer rates a closed case low
    commands: Commands
    menu: list[Id] = Field(min_length=1)
    routing: Routing


class OtherTopic(Strict):
    """scripts_yaml/other.yaml: messages that are none of kefu's topics, and the answer to them."""

    examples: list[str] = Field(min_length=1)
    reply: Text
    # "投诉", "我要反映问题": a complaint that names no category. Answered with the menu, not a guess.
    vague_examples: list[str] = Field(min_length=1)
    vague_reply: Text


class Fact(Strict):
    """Something the case needs from the customer."""

    type: Id
    label: str  # how staff see it on the case, e.g. 运单号
    prompt: Text
    options: list[str] | None = None  # for facts of a choice type


class Step(Strict):
    """One rung of the escalation ladder (处理方式)."""

    role: Id
    action: Text
    deadline_hours: float = Field(gt=0)


class Option(Strict):
    label: str
    goto: StateName


class State(Strict):
    """One step of the conversation. On entry it says its texts and opens the case if asked;
    then it waits for the facts it collects or for a choice among its options, or moves on."""

    say: list[Id] = []
    open_case: bool = False
    collect: list[Id] = []
    ask: Text | None = None
    options: list[Option] = []
    goto: StateName | None = None
    switch_to: Id | None = None  # hand the conversation, with its facts, to another category
    end: bool = False

    @model_validator(mode="after")
    def _one_way_out(self) -> "State":
        exits = [bool(self.options), self.goto is not None, self.end, self.switch_to is not None]
        if sum(exits) != 1:
            raise ValueError("a state needs exactly one way out: 'options', 'goto', 'switch_to' or 'end: true'")
        if self.options and not self.ask:
            raise ValueError("a state with 'options' needs an 'ask' text")
        if self.collect and self.open_case:
            raise ValueError("collect the facts in one state and open the case in the next")
        if self.collect and self.options:
            raise ValueError("collect the facts in one state and offer options in the next")
        return self


class Flow(Strict):
    initial: StateName
    states: dict[StateName, State]


class Category(Strict):
    """scripts_yaml/<id>.yaml: one kind of complaint, from the manual's chapter 4."""

    id: Id
    name: str
    menu_label: str
    manual_section: str
    examples: list[str] = Field(min_length=1)
    answer_points: dict[Id, Text] = Field(min_length=1)
    handling: list[Step] = Field(min_length=1)
    facts: dict[Id, Fact] = {}
    closing: Text
    flow: Flow
