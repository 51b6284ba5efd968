"""The shape of the content files in scripts_yaml/, as pydantic models."""

from __future__ import annotations

from datetime import date
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


class Confirmation(Strict):
    """A supervisor's word on one of our drafts (kefu drafts apply writes it): the draft stands as
    confirmed, or was replaced by their correction (was: the draft it replaced)."""

    by: Annotated[str, StringConstraints(min_length=1)]
    at: date  # not "on": YAML 1.1 reads a bare on as true
    comment: str | None = None
    was: str | None = None


class Text(Strict):
    """A customer-facing text (a Jinja2 template) and where it comes from."""

    text: Annotated[str, StringConstraints(min_length=1)]
    provenance: Provenance
    source: str | None = None  # the manual's section, for manual texts
    confirmed: Confirmation | None = None  # a draft a supervisor confirmed or corrected

    @model_validator(mode="after")
    def _manual_names_source(self) -> "Text":
        if self.provenance is Provenance.manual and not self.source:
            raise ValueError("a text taken from the manual must name its section in 'source'")
        if self.provenance is Provenance.manual and self.confirmed is not None:
            raise ValueError("'confirmed' is for drafts: a text taken from the manual needs no confirmation")
        return self


class Answer(Text):
    """A text that answers a question customers ask in their own words (a policy point, a category's FAQ)."""

    cues: list[str] = []  # words that show a question asks for this answer (多久, 到账, 打给我)
    title: str | None = None  # a short name offered as a button when the question is unclear (提款期限)
    overview: bool = True  # said when the topic opens; False: only when asked for
    also: list[str] = []  # answers said with this one (the storage rule, then the shares)
    figures: bool = False  # states the figures a quote gives (the fee table): not repeated beside a quote
    # A charge the customer disputes (没人通知就收保管费): said instead of any quote, then this complaint
    # category's check (its flow's `check` state) collects the waybill and opens the case.
    check: Id | None = None
    # An answer that asks for the waybill (货款到哪一步了，把运单号发给我): the waybill sent next goes to a person
    # who looks into it, instead of being read as figures.
    waybill_check: Literal["handoff"] | None = None
    # Asked in these words with no amount, this is answered and nothing priced (通知那天算不算一天: 一天 is no figure).
    no_quote: bool = False
    # A complaint's FAQ told in the message that starts the complaint is said instead of these answer points,
    # its cues alone enough (多了一项叉车费: the charges checked, not why prices differ between regions).
    replaces: list[Id] = []
    # A request that is no complaint (other.answers) though the router surely reads it as one of these: still
    # this request (我想寄一批货…运费怎么算 reads as a price complaint; it asks for a quote).
    over: list[Id] = []


class Role(Strict):
    name: str  # shown to staff and customers, e.g. 分公司经理
    doing: str  # what this role does on a case, in plain words for the customer (正在联系托运窗口安排发货)
    doing_confirmed: Confirmation | None = None  # `doing` is our draft until a supervisor confirms it


class Hours(Strict):
    """Business hours, local time: promised contact times fall inside them and deadline clocks run only then."""

    open: Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
    close: Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]

    @model_validator(mode="after")
    def _opens_before_closing(self) -> "Hours":
        if self.open >= self.close:
            raise ValueError("'open' must be before 'close'")
        return self


class BusinessHours(Hours):
    roles: dict[Id, Hours] = {}  # a role's own hours (a fleet that starts earlier), else the default


class FactType(Strict):
    """How a kind of fact is checked: a pattern after normalising, a free text, or a fixed choice."""

    kind: Literal["pattern", "text", "choice"]
    # filled from this kind of entity found in any message
    entity: Literal["waybills", "phones", "addresses", "times"] | None = None
    pattern: str | None = None
    strip: str = ""  # characters removed before matching, e.g. spaces and dashes in a waybill number
    min_length: int = 1
    max_length: int = 2000
    invalid: Text
    invalid_again: Text | None = None  # the second failed answer in a row: says it differently, offers a way out
    wordless: Text | None = None  # a pattern asked, words given without a digit (老号码): what is needed, the way out
    help: "Answer | None" = None  # asked what it is or where to find it (什么是单号): said, with the way out
    skip_label: str | None = None  # the option that says the customer cannot give it (没有运单号)
    # what customers call it (单号, 单子): "单号我找不到了" said anywhere is the way out, not asked again
    called: list[str] = []
    instead: "InsteadFact | None" = None  # asked when the customer cannot give this fact (no waybill)

    @model_validator(mode="after")
    def _pattern_for_pattern_kind(self) -> "FactType":
        if (self.kind == "pattern") != (self.pattern is not None):
            raise ValueError("'pattern' is required for kind 'pattern' and only allowed there")
        return self


class InsteadFact(Strict):
    """What identifies the same thing when the customer cannot give the fact (no waybill: who, route, date)."""

    id: Id
    label: str
    prompt: Text
    # said with the way out, these tell there is nothing to identify (无单号 我只是打电话问价钱): not asked either
    nothing_words: list[str] = []


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
    greeting_plain: Text  # the first message is angry: no "很高兴为您服务"
    still_here: Text  # "在吗" from a customer already talking
    menu_prompt: Text
    fallback: Text
    choose_again: Text
    out_of_range: Text  # a number no option has: names the valid range (what: the number, step.count: how many)
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
    which_one: Text
    rate_ask: Text
    rate_thanks: Text
    rate_low_ask: Text
    rate_reason_thanks: Text
    also_mentioned: Text
    also_now: Text
    topic_changed: Text
    # Conversation repairs (dialogs/repairs.py), for every category and topic.
    handoff: Text
    handoff_again: Text
    confirm_cancel: Text
    confirm_bye: Text
    go_on: Text
    resume: Text
    thanks_reply: Text
    ack_reply: Text | None = None  # to an acknowledgement (嗯, 行吧) at "anything else?"; thanks_reply when absent
    wait_reply: Text
    about_me: Text
    which_one_way_out: Text | None = None  # the problem not chosen when asked: how else to go on
    no_waybill_yet: Text | None = None  # "不知道啥单号" while asked which problem
    told_noted: Text | None = None  # a detail put right while asked which problem
    recorded: Text | None = None  # what the case holds, read back when asked after it
    promise_broken: Text | None = None  # a time promised and not kept, told where another thing is asked
    about_me_handoff: Text | None = None  # asked "are you a robot?" with a request for a person: said before the handoff
    hours: Text | None = None  # when staff are at work, as business_hours sets it (checked)
    apology: Text
    noted: Text
    look_back_failed: Text
    moved_on: Text
    also_noted: Text
    facts_carried: Text | None = None  # a new complaint right after a case takes its waybill and phone
    my_cases: Text
    case_updated: Text
    no_my_cases: Text
    repeat_prefix: Text  # before a question asked again, the same as last time
    repeat_told: Text | None = None  # before a statement said again (a question's prefix reads oddly there)
    # a fee or policy answer asked for again at once (我是问…几天到账): said instead of the same answer again,
    # the way on to a person who can find out more
    answered_again: Text | None = None
    answered_again_complaint: Text | None = None  # the same in a complaint: an apology and the way to a person
    # a question asked while a number is asked that nothing answers (现在怎么办 客户在漳州等着): kept for staff
    question_noted: Text | None = None
    withdraw_noted: Text | None = None  # a registered complaint withdrawn: noted, staff confirm and close it
    hurry_noted: Text | None = None  # 能快点吗 right after a case: the hurry noted on it for staff (names: case)
    contact_declined: Text | None = None  # after a case, no phone after all (不给电话了): progress told here instead
    words_noted: Text | None = None  # words at a number question that do not name it (福州到南昌的): kept for staff
    foreign: Text | None = None  # a message in another language that kefu cannot place
    photos_here: Text | None = None  # where photos go (this chat, onto the case)
    status_again: Text | None = None  # a case's progress asked again at once: sorry, and the way to a person now
    status_by_waybill: Text
    topic_which: Text
    topic_follow_up: Text
    amount_too_large: Text
    amount_not_positive: Text
    # The Telegram channel's own texts (bot/telegram/, bot/casework.py).
    too_fast: Text
    unsupported_message: Text
    attachment_saved: Text
    attachment_kept: Text
    relayed: Text
    staff_reply: Text
    staff_only: Text
    not_ratable: Text  # a rating press for a case that is not this customer's, not closed, or already rated
    system_error: Text  # a message whose handling failed; it is tried again (nothing of it is recorded yet)
    system_failed: Text  # ... and it failed every attempt


class FollowUp(Strict):
    """The short list offered after a case or an answer, instead of the whole menu (button labels)."""

    status: str  # how my cases stand
    other: str  # another problem: the menu
    human: str  # a person
    bye: str  # nothing else


class Repairs(Strict):
    """Words that say what a message wants besides answering the question (dialogs/repairs.py).

    Lists of phrases, matched after folding; the short-message lists (cancel, bye, thanks, wait,
    affirm, deny) count only when the message says little else."""

    human: list[str]  # a request for a person wherever it stands (真人, 转人工, 12315)
    human_after_verb: list[str]  # a person asked for after 找/叫/要/转/换/让/请 (领导, 主管, 人)
    not_human: list[str]  # look like a request for a person but are not (人工费)
    cancel: list[str]
    bye: list[str]
    thanks: list[str]
    acknowledge: list[str] = []  # 好的, 嗯, 行吧: heard, nothing more (not thanks: 不客气 would not fit)
    wait: list[str]
    affirm: list[str]
    deny: list[str]
    accept: list[str] = []  # yes to an offer (需要现在一起登记吗？ 好的): unlike affirm, 不用了 is no here
    decline: list[str] = []  # no to an offer
    protest: list[str]  # "I already said it": look back at earlier messages
    meta: list[str]  # questions about kefu itself
    hours: list[str] = []  # when staff are at work (几点下班, 营业时间)
    insult: list[str]
    cannot_give: list[str]  # the customer does not have what is asked (单子丢了, 不记得)
    goods_lost: list[str] = []  # the goods, not what is asked, are lost (货丢了): no cannot_give
    subjects: list[str]  # what is asked for (单号, 电话): "单号我找找" still says little else
    correction: list[str]  # a fact or the complaint is being corrected
    own_status: list[str]  # asks how their own case is going, without its number
    unanswered: list[str] = []  # the last answer missed what was asked (我是问…, 答非所问)
    withdraw: list[str] = []  # withdraws a complaint already registered (撤销投诉): noted on its case for staff
    hurry: list[str] = []  # asks a case just opened to be hurried (能快点吗): noted on it, and said so
    lead_in: list[str] = []  # words that only lead in to what is to come (那个，我想问下…): answered as a hello
    not_called: list[str] = []  # a call promised that never came (结果没人打): sorry before the case's status
    photos: list[str] = []  # how to send photos (照片怎么发给你们): answered wherever asked
    confused: list[str] = []  # lost at a question (咋办, 你说啥): the way out at once
    resume: list[str] = []  # back to the complaint after a side question (回到刚才那个)
    upset: list[str] = []  # sarcasm and threats: an apology first, the complaint read as ever (呵呵 你们可真行)
    recorded: list[str] = []  # what was put on the case, asked after it (登记的电话是哪个)
    addressing: list[str] = []  # how customers call the agent (姑娘, 师傅): no words of their own in "谢谢你啊姑娘"
    fillers: str  # characters that carry no meaning in a short message (啊吧了呢)


class Handoff(Strict):
    """A case opened only because the customer asked for a person, outside any complaint."""

    name: str
    handling: list["Step"] = Field(min_length=1)
    fact_labels: dict[Id, str]  # how staff see what is known: request (the customer's words), waybill, phone


class WhomProblems(Strict):
    words: list[str] = Field(min_length=1)  # 司机, 送货的, 师傅
    problems: list[Id] = Field(min_length=2)  # the categories offered, likeliest first

class GoodsTold(Strict):
    words: list[str] = Field(min_length=1)  # where the goods are said to be (才送到 / 显示在中转)
    void: list[Id] = Field(min_length=1)  # the complaints such a message is not (goods not there yet / not sent)
    instead: Id | None = None  # what it is when it tells no other complaint (显示在中转 三天没动了: a tracking request)


class Settled(Strict):
    to: Id  # the complaint about how it was settled (claim_dissatisfied)
    words: list[str] = Field(min_length=1)  # 已经赔了, 只赔了


class Routing(Strict):
    """How free text is understood (see dialogs/intents.py)."""

    threshold: float = Field(gt=0, lt=1)  # least confidence to act on the router's label
    # least certainty (the calibrated chance that the label is right) to start what a new message asks
    # without asking back which problem it is; None: the confidence and threshold decide
    certainty: float | None = Field(default=None, gt=0, lt=1)
    also_threshold: float = Field(gt=0, lt=1)  # least confidence of a clause read as a second complaint
    joiners: list[str]  # words that join two complaints in one message (而且, 还有)
    asides: list[str] = []  # words that set a second question apart (另外问一下, 对了): a complaint and a fee in one message
    # words that put a message's second complaint on other goods (上次的理赔): its case asks their waybill afresh
    other_goods: list[str] = []
    # Two complaints in one message: the key's category yields to those listed (the goods before the manners).
    prefer: dict[Id, list[Id]] = {}
    # A complaint that includes others (a claim is about the damage): those are not offered separately.
    covers: dict[Id, list[Id]] = {}
    # A fee topic's figures with a clause that tells of one of these complaints: the fee question's own story
    # ("货放仓库一个星期了，运费800，保管费多少"); any other complaint told beside the figures is a complaint.
    fee_stories: dict[Id, list[Id]] = {}
    glosses: dict[str, str] = {}  # English and pinyin words of a problem, read with these Chinese words (stuck: 滞留)
    # A complaint that names only whom it is about (我要投诉司机): the problems asked about, by the words
    # that name that person.
    about_whom: dict[str, "WhomProblems"] = {}
    fee_questions: dict[Id, list[Id]] = {}  # asked beside a topic in its own words, these are its question
    # A topic named without a question after a case of these categories is a fact of the case, not a fee asked
    # (保价5000 after a disputed payout).
    case_facts: dict[Id, list[Id]] = {}
    # A complaint told as already settled (货丢了 已经赔了 但是只赔了运费): the complaint about its settlement.
    settled: dict[Id, Settled] = {}
    # A message that says where the goods are is no complaint those words rule out: arrived (货压了三天才送到 司机还凶我),
    # no goods not there yet, another complaint it tells comes first; sent (显示在中转 三天没动了), no goods held at
    # the start, a tracking request.
    goods_told: list[GoodsTold] = []
    told_threshold: float = Field(0.95, gt=0, lt=1)  # least confidence of such a told complaint beside figures
    change_words: list[str]  # words that announce a change of topic mid-conversation (算了, 换个问题)
    # with a cancel, the words that say what is wanted instead (算了不退了，改成查一下货到哪了)
    instead_words: list[str] = []
    # asked with a waybill and little else, a tracking request ("货到了没 单号SH…")
    where_words: list[str] = []
    # Courtesies that tell nothing of the problem (你好 我想问一下): not counted as the words around a question
    courtesies: list[str] = []
    # A complaint asked for outright in these words (要理赔, 我要退货, 我的货呢): started without asking back when the
    # router reads the message as it, however long the story around the words.
    asked_for: dict[Id, list[str]] = {}
    # A request a message opens with (我要申请理赔, then the story): that complaint, whatever the story reads as.
    opens_with: dict[Id, list[str]] = {}
    places: list[str] = []


class DamageReport(Strict):
    """The 15-day damage/shortage report (货损货差十五日报表): which case kinds it lists, and the facts
    that hold the amount claimed or declared (read as numbers where a single amount is named)."""

    categories: list[Id] = Field(min_length=1)
    amount_facts: list[Id] = []


class Reports(Strict):
    """The reports the manual asks for (第一章 工作职责 四、六)."""

    damage: DamageReport


class Shared(Strict):
    """scripts_yaml/shared.yaml: texts, roles and rules used by every category."""

    version: str
    timezone: str
    business_hours: BusinessHours
    texts: SharedTexts
    roles: dict[Id, Role]
    fact_types: dict[Id, FactType]
    case_statuses: dict[Id, str]  # how a case's status is shown to customers
    back_label: str  # the option that returns to the main menu; must be one of commands.menu
    rating_reasons: list[str] = Field(min_length=1)  # offered when a customer rates a closed case low
    commands: Commands
    menu: list[Id] = Field(min_length=1)
    follow_up: "FollowUp"  # offered after a case or an answer: the likely next steps
    routing: Routing
    repairs: Repairs
    handoff: Handoff
    reports: Reports | None = None


class OtherTopic(Strict):
    """scripts_yaml/other.yaml: messages that are none of kefu's topics, and the answer to them."""

    examples: list[str] = Field(min_length=1)
    reply: Text
    # "投诉", "我要反映问题": a complaint that names no category. Answered with the menu, not a guess.
    vague_examples: list[str] = Field(min_length=1)
    vague_reply: Text
    # Requests that are no complaint and no fee (上门取件, 改地址, 招聘): answered by their cues, unless the
    # message is surely a complaint; a fee asked beside one is then answered too.
    answers: dict[Id, Answer] = {}


class Fact(Strict):
    """Something the case needs from the customer."""

    type: Id
    label: str  # how staff see it on the case, e.g. 运单号
    prompt: Text
    options: list[str] | None = None  # for facts of a choice type
    # Words that mean an option when a customer says it their way (开单的 → 托运窗口人员).
    option_words: dict[str, list[str]] = {}
    # The customer's own account of what happened: a first message that tells the story fills it.
    describes: bool = False
    # A free-text fact that a clause of any message fills when it uses one of these words (照片都拍了 → photos).
    clues: list[str] = []
    # A prompt that asks the customer to do something (请拍下…): a bare 好的 is this answer, not the prompt again.
    ack_answer: str | None = None


class Step(Strict):
    """One rung of the escalation ladder (处理方式)."""

    role: Id
    action: Text
    deadline_hours: float = Field(gt=0)
    # The manual sets no ladder: every step's role and deadline are our drafts until a supervisor confirms them.
    role_confirmed: Confirmation | None = None
    deadline_confirmed: Confirmation | None = None


class Option(Strict):
    label: str
    goto: StateName
    words: list[str] = []  # what customers say for this option (发到别的地方了)
    # said only in answer to the question: in an earlier message they tell the grievance ("一百多箱让我自己搬"
    # is no "no, thanks" to the paid carrying that is offered after it)
    reply_words: list[str] = []
    given: list[Id] = []  # facts that, sent instead of a choice, take this option (a waybill at 需要登记核对吗？)


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
    check: StateName | None = None  # where a charge disputed at the fee desk starts, its answer already given
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
    faq: dict[Id, Answer] = {}  # side questions asked during this complaint (那搬上楼要多少钱)
    closing: Text
    flow: Flow


FactType.model_rebuild()
Shared.model_rebuild()
Handoff.model_rebuild()
