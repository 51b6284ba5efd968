"""The fees and policies of the manual's chapter 2 (scripts_yaml/policies.yaml): their shape, their checks, and the fees they set.

Every figure and every Chinese sentence comes from the YAML file; the calculators here only
apply the rules to Decimal amounts and render the file's templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from datetime import date
from typing import Annotated, Any, Callable, Literal

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import Field, model_validator

from dialogs.matching import normalize
from dialogs.schema import Answer, Id, Strict, Text
from dialogs.yamlfile import (DEFAULT_DIR, ContentError, ContentFileError, Problem, YamlDoc, did_you_mean, parse_model,
                              read_yaml, shown_path)

POLICIES_FILE = "policies.yaml"
DEFAULT_FILE = DEFAULT_DIR / POLICIES_FILE
CENT = Decimal("0.01")  # money is quoted to the fen, rounded half up
# No freight, declared value or collection is this large; a larger figure is a typo, answered as such
# (and Decimal's 28 digits are far away).
MAX_AMOUNT = Decimal(10) ** 12

Money = Annotated[Decimal, Field(ge=0)]  # 元
Share = Annotated[Decimal, Field(gt=0, le=1)]  # a fraction: 0.003 is 3‰, 0.10 is 10 %


# -- the file's shape ------------------------------------------------------------------------


class Topic(Strict):
    """What every topic has: its names, how customers ask about it, and what we answer."""

    name: str
    menu_label: str
    manual_section: str
    examples: list[str] = Field(min_length=1)
    words: list[str] = Field(min_length=1)  # what names the topic in a question (代收, 保价): amounts are priced by it
    answers: dict[Id, Answer] = Field(min_length=1)  # said in this order
    ask: Text | None = None  # invites the customer's figures, for topics kefu can calculate


class CodTier(Strict):
    """One row of the COD fee table: amounts above `above`, up to and including `up_to`."""

    id: Id
    above: Money
    up_to: Money | None = None  # None: no upper limit (the last row)
    fixed: Money | None = None  # a fixed fee per transaction ...
    rate: Share | None = None  # ... or a share of the amount
    explain: Text  # the quote; names: amount, fee, tier

    @model_validator(mode="after")
    def _one_fee(self) -> "CodTier":
        if (self.fixed is None) == (self.rate is None):
            raise ValueError("a tier needs exactly one of 'fixed' or 'rate'")
        return self


class Cod(Topic):
    small_limit: Money  # the first tier's upper limit: a reading of a damaged source
    charged_differs: Text  # names: charged, fee
    tiers: list[CodTier] = Field(min_length=1)
    payout_months: int = Field(gt=0)
    handover_day: int = Field(ge=1, le=31)


class MembershipQuotes(Strict):
    card: Text  # names: cards, fee


class Membership(Topic):
    card_fee: Money
    quotes: MembershipQuotes


class Approval(Strict):
    """A check that a single item needs when its declared value is above a limit."""

    id: Id
    above: Money
    note: Text  # names: approval


class Goods(Strict):
    """A kind of goods as the manual names it, and what customers call it."""

    goods: str
    words: list[str] = Field(min_length=1)
    # Words that tell of the goods rather than name them (只能国外修), and what the goods are then called.
    traits: list[str] = []
    called: str | None = None

    @model_validator(mode="after")
    def _traits_are_called(self) -> "Goods":
        if self.traits and not self.called:
            raise ValueError("traits need 'called': what the goods are named when a trait is what the customer said")
        return self


class LossOnly(Strict):
    goods: list[Goods] = Field(min_length=1)
    waybill_remark: str  # written on the waybill word for word


class InsuranceQuotes(Strict):
    rate: Text  # names: declared, fee
    minimum: Text
    refused: Text  # names: goods, rule
    fragile: Text  # names: goods, rule


class Insurance(Topic):
    rate: Share
    minimum: Money  # per waybill
    approvals: list[Approval] = []
    not_insurable: list[Goods] = Field(min_length=1)
    loss_only: LossOnly
    quotes: InsuranceQuotes


class Region(Strict):
    """A group of lines that pay the same storage share."""

    id: Id
    name: str
    short: str  # a button's label
    share: Share  # of the freight, per overdue day
    places: list[str] = Field(min_length=1)  # as the manual names them
    draft_places: list[str] = []  # added by us, for a supervisor to confirm


class StorageQuotes(Strict):
    free: Text  # names: days, freight, fee
    charged: Text  # names: days, overdue, freight, region, fee
    unknown_city: Text  # names: city, known
    # names: region, place: the line's share, told when the line is known and the freight not yet (发到重庆的 每天多少)
    line_share: Text | None = None


class StoragePrompts(Strict):
    """Asks for what a storage quote still lacks, one thing at a time."""

    freight: Text
    days: Text
    city: Text
    city_again: Text  # the answer named no place kefu knows


class Storage(Topic):
    prompts: StoragePrompts
    free_days: int = Field(ge=0)
    regions: list[Region] = Field(min_length=1)
    quotes: StorageQuotes


class InvoiceQuotes(Strict):
    in_time: Text  # names: shipped, deadline
    too_late: Text


class Invoice(Topic):
    vat_documents: list[str] = Field(min_length=1)
    quotes: InvoiceQuotes


Fault = Literal["missing", "incomplete", "old"]


class Penalty(Strict):
    id: Id
    case: str
    amount: Money
    pieces: Literal["below", "above", "any"]  # up to piece_limit, over it, or whatever the count
    kinds: list[Fault] = Field(min_length=1)


class LabelQuotes(Strict):
    penalty: Text  # names: pieces, penalty, boundary
    reward: Text  # names: penalty (元), reward


class Labels(Topic):
    piece_limit: int = Field(gt=0)
    penalties: list[Penalty] = Field(min_length=1)
    fault_words: dict[Fault, list[str]]
    finder_share: Share
    company_share: Share
    quotes: LabelQuotes


class Policies(Strict):
    """scripts_yaml/policies.yaml: one field per topic, plus the file's version."""

    version: str
    total: Text  # names: total
    between: Text  # names: low, high
    cod: Cod
    membership: Membership
    insurance: Insurance
    storage: Storage
    invoice: Invoice
    labels: Labels

    @property
    def topics(self) -> dict[str, Topic]:
        """The topics by id, in the file's order."""
        return {topic_id: getattr(self, topic_id) for topic_id in TOPIC_IDS}


TOPIC_IDS: tuple[str, ...] = tuple(name for name in Policies.model_fields if name not in ("version", "total", "between"))


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """A fee, and the rule that produced it explained for the customer."""

    amount: Decimal  # 元, rounded to 0.01 half up
    explanation: str
    rule: str  # a COD tier id; "rate" or "minimum"; a storage region id or "free"; "card"
    approvals: tuple[str, ...] = ()  # insurance: ids of the checks a single item of this value needs
    notes: tuple[str, ...] = ()  # insurance: those checks, explained (same order)


@dataclass(frozen=True)
class UnknownCity:
    """The storage fee depends on the line, and the place given names none (or more than one)."""

    city: str  # as given
    known: tuple[str, ...]  # every place the regions list, to offer or match against
    message: str  # asks the customer again, with examples


# -- templates -------------------------------------------------------------------------------


def _number(value: Any) -> Decimal:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()  # StrictUndefined's own message names what is missing
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError(f"expected a number, got {value!r}")
    return Decimal(value)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _plain(value: Any) -> str:
    return format(_number(value).normalize(), "f")


_FILTERS: dict[str, Callable[[Any], str]] = {
    "money": lambda v: format(_cents(_number(v)), "f"),
    "yuan": _plain,
    "percent": lambda v: _plain(_number(v) * 100) + "%",
    "permille": lambda v: _plain(_number(v) * 1000) + "‰",
    "wan": lambda v: _plain(_number(v) / 10000),
}

# Its own environment because these templates see figures, not the engine's TEMPLATE_NAMES,
# and need the number filters; sandboxed and strict for the same reasons as dialogs.render.
_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_env.filters.update(_FILTERS)


@lru_cache(maxsize=1024)
def _compiled(source: str):
    return _env.from_string(source)


def _render(text: Text, values: dict[str, Any]) -> str:
    return _compiled(text.text).render(**values).strip()


def _names(topic: Topic, **extra: Any) -> dict[str, Any]:
    """The names a topic's templates see: its own fields, plus a quote's values."""
    values: dict[str, Any] = {name: getattr(topic, name) for name in type(topic).model_fields}
    values.update(extra)
    return values


def topic_text(topic_id: str, text: Text, policies: Policies) -> str:
    """Renders one of a topic's texts (its ask, a prompt) with the topic's own fields."""
    return _render(text, _names(policies.topics[topic_id]))


def topic_answers(topic_id: str, policies: Policies) -> dict[str, str]:
    """Renders a topic's answers, in the file's order."""
    topic = policies.topics[topic_id]
    return {answer_id: _render(text, _names(topic)) for answer_id, text in topic.answers.items()}


# -- calculators -----------------------------------------------------------------------------


def _amount(value: Any, what: str, *, positive: bool = True) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not {value!r}")
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{what} must be a number, not {value!r}") from None
    if not number.is_finite() or number < 0 or (positive and number == 0):
        raise ValueError(f"{what} must be {'more than' if positive else 'at least'} 0, not {value!r}")
    if number > MAX_AMOUNT:
        raise ValueError(f"{what} must be at most {MAX_AMOUNT}, not {value!r}")
    return number


def cod_fee(amount: Decimal | int | str, policies: Policies) -> Quote:
    """Quotes the fee for collecting one payment of the given amount (元) on delivery."""
    amount = _amount(amount, "amount")
    cod = policies.cod
    tier = next((t for t in cod.tiers if t.above < amount and (t.up_to is None or amount <= t.up_to)), None)
    if tier is None:  # only possible for Policies not made by load_policies
        raise ValueError(f"no COD tier covers {amount}")
    fee = _cents(tier.fixed if tier.fixed is not None else amount * tier.rate)  # type: ignore[operator]
    return Quote(fee, _render(tier.explain, _names(cod, amount=amount, tier=tier, fee=fee)), tier.id)


def cod_charged_differs(standard: Quote, charged: Decimal, policies: Policies) -> str:
    """Says that what the customer was charged for a collection is not the standard fee, and offers a check."""
    return _render(policies.cod.charged_differs, _names(policies.cod, charged=charged, fee=standard.amount))


def insurance_fee(declared_value: Decimal | int | str, policies: Policies) -> Quote:
    """Quotes the insured-value fee of one waybill, and the checks a single item of that value needs."""
    declared = _amount(declared_value, "declared_value")
    insurance = policies.insurance
    by_rate = declared * insurance.rate
    rule = "minimum" if by_rate < insurance.minimum else "rate"
    fee = _cents(max(by_rate, insurance.minimum))
    crossed = [a for a in insurance.approvals if declared > a.above]
    return Quote(
        fee,
        _render(getattr(insurance.quotes, rule), _names(insurance, declared=declared, fee=fee)),
        rule,
        approvals=tuple(a.id for a in crossed),
        notes=tuple(_render(a.note, _names(insurance, approval=a)) for a in crossed),
    )


def storage_fee(
    freight: Decimal | int | str, days_since_notice: int, city: str, policies: Policies, place: str = ""
) -> Quote | UnknownCity:
    """Quotes the storage fee for goods picked up days_since_notice days after the pickup notice.

    city names the line: the place at its far end from Fujian, or any Fujian place for a line
    within Fujian. Within the free days the line does not matter and is not looked up."""
    freight = _amount(freight, "freight", positive=False)
    if isinstance(days_since_notice, bool) or not isinstance(days_since_notice, int) or days_since_notice < 0:
        raise ValueError(f"days_since_notice must be a whole number of days, at least 0, not {days_since_notice!r}")
    storage = policies.storage
    days = days_since_notice
    if days <= storage.free_days:
        fee = _cents(Decimal(0))
        return Quote(fee, _render(storage.quotes.free, _names(storage, days=days, freight=freight, fee=fee)), "free")
    region = find_region(city, policies)
    if region is None:
        known = known_places(policies)
        return UnknownCity(city, known, _render(storage.quotes.unknown_city, _names(storage, city=city, known=known)))
    overdue = days - storage.free_days
    fee = _cents(freight * region.share * overdue)
    values = _names(storage, days=days, overdue=overdue, freight=freight, region=region, fee=fee, place=place)
    return Quote(fee, _render(storage.quotes.charged, values), region.id)


def membership_fee(policies: Policies, cards: int = 1) -> Quote:
    """Quotes the card fee for issuing or replacing membership cards."""
    if isinstance(cards, bool) or not isinstance(cards, int) or cards < 1:
        raise ValueError(f"cards must be a whole number, at least 1, not {cards!r}")
    membership = policies.membership
    fee = _cents(membership.card_fee * cards)
    return Quote(fee, _render(membership.quotes.card, _names(membership, cards=cards, fee=fee)), "card")


def label_penalty(pieces: int | None, fault: str, policies: Policies) -> Quote | None:
    """Quotes the label penalty of one waybill with this many pieces (None: not said) and this fault
    (missing, incomplete, old); None when the rows do not settle it (the piece count is needed)."""
    labels = policies.labels
    if fault == "old":
        rows = [p for p in labels.penalties if "old" in p.kinds]
    elif pieces is None:
        rows = [p for p in labels.penalties if fault in p.kinds]
        if len({p.amount for p in rows}) != 1:
            return None
    else:
        side = {"below"} if pieces < labels.piece_limit else {"above"} if pieces > labels.piece_limit else {"below", "above"}
        rows = [p for p in labels.penalties if fault in p.kinds and (p.pieces in side or p.pieces == "any")]
    if not rows:
        return None
    penalty = rows[0] if len({p.amount for p in rows}) == 1 else min(rows, key=lambda p: p.amount)
    boundary = pieces == labels.piece_limit and len(rows) > 1 and fault != "old"
    text = _render(labels.quotes.penalty, _names(labels, pieces=pieces, penalty=penalty, boundary=boundary))
    return Quote(_cents(penalty.amount), text, penalty.id)


def label_reward(penalty: Decimal, policies: Policies) -> str:
    """What the finder of a label fault is rewarded out of the penalty."""
    labels = policies.labels
    reward = _cents(penalty * labels.finder_share)
    return _render(labels.quotes.reward, _names(labels, penalty=penalty, reward=reward))


def invoice_deadline(shipped: date, today: date, policies: Policies) -> Quote:
    """Says whether an invoice may still be asked for goods shipped on that day: until the end of
    the following month. rule: in_time or too_late; amount: 0."""
    year, month = divmod(shipped.year * 12 + shipped.month, 12)  # the month after, 1-based below
    after = date(year, month + 1, 1)
    last = date(after.year + (after.month == 12), after.month % 12 + 1, 1).toordinal() - 1
    deadline = date.fromordinal(last)
    rule = "in_time" if today <= deadline else "too_late"
    invoice = policies.invoice
    text = _render(getattr(invoice.quotes, rule), _names(invoice, shipped=f"{shipped.month}月",
                                                         deadline=f"{deadline.month}月{deadline.day}日"))
    return Quote(_cents(Decimal(0)), text, rule)


def goods_named(text: str, groups: list[Goods]) -> tuple[str, Goods] | None:
    """The first of these kinds of goods the text names: the word the customer used, and its kind."""
    said = _fold(text)
    hits = [(said.find(_fold(word)), word, group) for group in groups for word in [*group.words, *group.traits]
            if _fold(word) in said]
    if not hits:
        return None
    _, word, group = min(hits, key=lambda hit: (hit[0], -len(hit[1])))
    return (group.called or word) if word in group.traits else word, group


def insurance_limits(goods: tuple[str, Goods], refused: bool, policies: Policies) -> str:
    """Explains why these goods cannot be insured (refused) or are insured against total loss only."""
    insurance = policies.insurance
    word, group = goods
    quote = insurance.quotes.refused if refused else insurance.quotes.fragile
    return _render(quote, _names(insurance, goods=word, rule=group.goods))


def total_text(total: Decimal, policies: Policies) -> str:
    return _render(policies.total, {"total": _cents(total)})


def between_text(low: Decimal, high: Decimal, policies: Policies) -> str:
    return _render(policies.between, {"low": low, "high": high})


def _fold(text: str) -> str:
    return "".join(normalize(text).split()).casefold()


def route_region(places: list[str], policies: Policies) -> Region | None | str:
    """The storage region of a route named by its places: the end outside Fujian decides (厦门发上海 →
    the deltas). Returns the region, None when no place was named, or the first place that no
    region lists (昆明: the manual sets no share for it)."""
    regions = [(place, find_region(place, policies)) for place in places]
    home = policies.storage.regions[0].id
    if len(set(places)) >= 2 and not any(region is not None and region.id == home for _, region in regions):
        # "上海发北京": the table's lines all run to or from Fujian; a route between two other places is in none
        return "到".join(dict.fromkeys(places))
    outside = [(place, region) for place, region in regions if region is None or region.id != home]
    if outside:
        place, region = outside[0]
        return region if region is not None else place
    return regions[0][1] if regions else None


def line_share_text(region: Region, place: str, policies: Policies) -> str | None:
    """The line's daily share of the freight in words, before any figure is known (or None: no such text)."""
    storage = policies.storage
    if storage.quotes.line_share is None:
        return None
    return _render(storage.quotes.line_share, _names(storage, region=region, place=place))


def find_region(city: str, policies: Policies) -> Region | None:
    """Returns the storage region whose places the text names, or None if it names none or several."""
    said = _fold(city or "")
    if not said:
        return None
    found = {
        region.id: region
        for region in policies.storage.regions
        for place in region.places + region.draft_places
        if _fold(place) in said
    }
    return next(iter(found.values())) if len(found) == 1 else None


def known_places(policies: Policies) -> tuple[str, ...]:
    """Every place the storage regions list, manual's first, in the file's order."""
    return tuple(place for r in policies.storage.regions for place in r.places + r.draft_places)


# -- loading and checking --------------------------------------------------------------------


def load_policies(path: Path = DEFAULT_FILE) -> Policies:
    """Reads and checks the policies file; raises ContentError listing every problem found."""
    path = Path(path)
    try:
        doc = read_yaml(path, shown_path(path))
    except ContentFileError as exc:
        raise ContentError([exc.problem]) from None
    except OSError as exc:
        raise ContentError([Problem(shown_path(path), None, "", f"cannot read: {exc.strerror}")]) from None
    problems: list[Problem] = []
    policies = parse_model(doc, Policies, problems)
    if policies is not None:
        problems += _check(policies, doc)
    if problems:
        raise ContentError(problems)
    return policies


def _check(policies: Policies, doc: YamlDoc) -> list[Problem]:
    """Checks what the schema cannot: the figures fit together, and every template renders."""
    problems: list[Problem] = []

    def add(path: tuple, message: str) -> None:
        problems.append(doc.problem(path, message))

    _check_cod(policies.cod, add)
    _check_ids(policies.insurance.approvals, ("insurance", "approvals"), add)
    approvals = policies.insurance.approvals
    for i in range(1, len(approvals)):
        if approvals[i].above <= approvals[i - 1].above:
            add(("insurance", "approvals", i, "above"),
                f"must be more than the previous approval's limit ({_plain(approvals[i - 1].above)}): list them from low to high")
    _check_regions(policies.storage.regions, add)
    labels = policies.labels
    if labels.finder_share + labels.company_share != 1:
        add(("labels", "company_share"),
            f"finder_share and company_share must add up to 1 (now {_plain(labels.finder_share + labels.company_share)})")
    _check_templates(policies, add)
    return problems


def _check_ids(items: list, at: tuple, add: Callable[[tuple, str], None]) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.id in seen:
            add(at + (i, "id"), f"duplicate id '{item.id}'")
        seen.add(item.id)


def _check_cod(cod: Cod, add: Callable[[tuple, str], None]) -> None:
    at = ("cod", "tiers")
    tiers = cod.tiers
    _check_ids(tiers, at, add)
    if tiers[0].above != 0:
        add(at + (0, "above"), "the first tier must start at 0")
    last = len(tiers) - 1
    for i, tier in enumerate(tiers):
        if tier.up_to is not None and tier.up_to <= tier.above:
            add(at + (i, "up_to"), f"must be more than 'above' ({_plain(tier.above)}): tiers rise")
        if i < last and tier.up_to is None:
            add(at + (i, "up_to"), "only the last tier may have no upper limit")
        previous = tiers[i - 1].up_to if i else None
        if previous is not None and tier.above != previous:
            add(at + (i, "above"),
                f"must equal the previous tier's up_to ({_plain(previous)}): tiers must leave no gap or overlap")
    if tiers[last].up_to is not None:
        add(at + (last, "up_to"), "the last tier must have no upper limit, so every amount has a fee")
    if cod.small_limit != tiers[0].up_to:
        first = tiers[0].up_to
        add(("cod", "small_limit"), f"must equal the first tier's up_to ({'none' if first is None else _plain(first)})")


def _check_regions(regions: list[Region], add: Callable[[tuple, str], None]) -> None:
    at = ("storage", "regions")
    _check_ids(regions, at, add)
    owner: dict[str, str] = {}
    for i, region in enumerate(regions):
        for key in ("places", "draft_places"):
            for j, place in enumerate(getattr(region, key)):
                folded = _fold(place)
                if not folded:
                    add(at + (i, key, j), "empty place name")
                elif folded in owner:
                    add(at + (i, key, j), f"'{place}' is already listed under region '{owner[folded]}': a place belongs to one region")
                else:
                    owner[folded] = region.id


def _check_templates(policies: Policies, add: Callable[[tuple, str], None]) -> None:
    """Renders every template with the names and kinds of values it will get."""

    def check(path: tuple, text: Text, values: dict[str, Any]) -> None:
        for message in _template_problems(text, values):
            add(path + ("text",), message)

    for topic_id, topic in policies.topics.items():
        for answer_id, text in topic.answers.items():
            check((topic_id, "answers", answer_id), text, _names(topic))
            for i, other in enumerate(text.also):
                if other not in topic.answers:
                    add((topic_id, "answers", answer_id, "also", i), f"no answer '{other}'" + did_you_mean(other, topic.answers))

    cod = policies.cod
    for i, tier in enumerate(cod.tiers):
        amount = tier.up_to if tier.up_to is not None else tier.above
        check(("cod", "tiers", i, "explain"), tier.explain, _names(cod, amount=amount, tier=tier, fee=Decimal(0)))

    membership = policies.membership
    check(("membership", "quotes", "card"), membership.quotes.card, _names(membership, cards=1, fee=membership.card_fee))
    check(("cod", "charged_differs"), cod.charged_differs, _names(cod, charged=Decimal(10), fee=Decimal(5)))
    check(("total",), policies.total, {"total": Decimal(0)})
    check(("between",), policies.between, {"low": Decimal(2000), "high": Decimal(3000)})
    invoice = policies.invoice
    for rule in InvoiceQuotes.model_fields:
        check(("invoice", "quotes", rule), getattr(invoice.quotes, rule), _names(invoice, shipped="1月", deadline="2月28日"))
    labels = policies.labels
    check(("labels", "quotes", "reward"), labels.quotes.reward, _names(labels, penalty=Decimal(30), reward=Decimal(15)))
    check(("labels", "quotes", "penalty"), labels.quotes.penalty,
          _names(labels, pieces=labels.piece_limit, penalty=labels.penalties[0], boundary=True))

    insurance = policies.insurance
    for rule in ("rate", "minimum"):
        check(("insurance", "quotes", rule), getattr(insurance.quotes, rule),
              _names(insurance, declared=insurance.minimum, fee=insurance.minimum))
    for rule in ("refused", "fragile"):
        check(("insurance", "quotes", rule), getattr(insurance.quotes, rule), _names(insurance, goods="", rule=""))
    for i, approval in enumerate(insurance.approvals):
        check(("insurance", "approvals", i, "note"), approval.note, _names(insurance, approval=approval))

    storage = policies.storage
    quotes = storage.quotes
    free = storage.free_days
    check(("storage", "quotes", "free"), quotes.free, _names(storage, days=free, freight=Decimal(0), fee=Decimal(0)))
    for region in storage.regions:  # every region's values, but each problem once
        found = _template_problems(
            quotes.charged, _names(storage, days=free + 1, overdue=1, freight=Decimal(0), region=region, fee=Decimal(0),
                                   place="上海"))
        for message in found:
            add(("storage", "quotes", "charged", "text"), message)
        if found:
            break
    check(("storage", "quotes", "unknown_city"), quotes.unknown_city,
          _names(storage, city="", known=known_places(policies)))
    if quotes.line_share is not None:
        check(("storage", "quotes", "line_share"), quotes.line_share, _names(storage, region=storage.regions[0], place="上海"))


def _template_problems(text: Text, values: dict[str, Any]) -> list[str]:
    try:
        tree = _env.parse(text.text)
    except TemplateSyntaxError as exc:
        return [f"broken template (line {exc.lineno} of the text): {exc.message}"]
    # Checked on the tree: Jinja looks a filter up only where it runs, so a trial render can miss one.
    problems = [
        f"template uses unknown filter '{node.name}'" + did_you_mean(node.name, _FILTERS)
        for node in tree.find_all(nodes.Filter) if node.name not in _env.filters
    ]
    if problems:  # find_undeclared_variables compiles, and would stop at the first unknown filter
        return problems
    problems = [
        f"template uses unknown name '{name}'" + did_you_mean(name, values) + f" (known: {', '.join(sorted(values))})"
        for name in sorted(meta.find_undeclared_variables(tree) - set(values))
    ]
    if problems:
        return problems
    try:
        _render(text, values)
    except Exception as exc:  # any failure of a trial render is a problem in the template
        return [f"template does not render: {exc}"]
    return []
