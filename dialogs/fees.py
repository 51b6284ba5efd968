"""The fee and policy desk: reads a customer's question about the manual's fees and policies and
answers it from scripts_yaml/policies.yaml, with exact figures where the question gives numbers.

A question is read as a whole: each amount is priced by the fee named nearest to it (代收5000，保价8000
is two quotes and a total), follow-up questions get the one answer they ask for (代收的钱多久能打给我),
goods that cannot be insured are refused with the rule, and a storage quote may gather its figures
over several messages. Pure code: the engine keeps the storage figures in the conversation's facts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from dialogs.entities import STARTING_NUMBER, Entities, introduced_as_waybill, number, tidy
from dialogs.folding import fold
from dialogs.policies import (MAX_AMOUNT, Policies, UnknownCity, between_text, cod_charged_differs, cod_fee, goods_named, insurance_fee,
                              find_region, insurance_limits, invoice_deadline, label_penalty, label_reward, line_share_text, membership_fee, route_region,
                              storage_fee, topic_answers, topic_text, total_text)
from dialogs.turn import QUESTION

STORAGE_NEEDS = ("freight", "days", "city")
FREIGHT_WORD = "运费"
# An amount right after one of these is what was charged, not a new question (你们扣了我十块).
_CHARGED = re.compile(r"(?<!代)(?:扣了|收了|收我|扣我|交了|付了|扣掉|收取了|罚了)(?:我)?\s*$")
# "手续费是不是90块", "听说要收10块": the fee the customer has heard of or guesses, to be checked, not an amount to price
_GUESSED = re.compile(r"(?:(?:是不是|是否|听说|据说|不是说|说是)(?:要|会)?(?:收|收取|交|付)?(?:手续费|保价费)?|每笔|每票)\s*$")
_AMOUNT_TOKEN = re.compile(r"(?:¥|rmb|人民币)?\s*[\d.,]+[千万kw]?|[零〇一二两三四五六七八九十百千万]+", re.IGNORECASE)
_GUESSED_AFTER = re.compile(r"\s*(?:块钱|块|元)?\s*(?:是吗|对吗|是不是|对不对|没错吧)")  # "手续费15块对吗"
_FEE_BEFORE = re.compile(r"(?:手续费|保价费|费用|收)\s*$")
_PICKUP = re.compile(r"提货|去提|来提|没提|通知|放了|放在|仓库|保管|存放")
# "保价8000能赔多少": the declared value of a claim, not a fee asked for, unless the fee is asked too.
# "付到付运费和代收款一共一万二": the sum of two charges, no one fee's amount to price
_SUMMED = re.compile(r"[和跟加][^，,。.\s]{1,6}(?:一共|总共|合计|加起来)\s*$")
_COMPENSATION = re.compile(r"赔")
_SUPPOSED = re.compile(r"的话|如果|要是|万一|假如|假设")  # a rule asked about, not a loss told
_FEE_ASKED = re.compile(r"保价费|费用|费率|手续费|交多少|收多少|付多少|扣了多少|扣多少|(?<!赔)多少钱|几块|怎么收|怎么算")
# Insurance told as what was done ("已保价2000", "没保价"): a fact of a claim, not a question about the fee.
_INSURED = re.compile(r"(?:已经?|有|没有?|未|办了|买了|保了)保价|保价了|保过价|保了价")
_INSURED_AMOUNT = re.compile(_INSURED.pattern + r"\s*(?:金额|了)?\s*[0-9零一二两三四五六七八九十百千万wWkK.]*\s*[元块]?")
_EXAMPLE = re.compile(r"(?:比如|例如|譬如|比方说|比方|就说|就按)\s*(?:说|是)?\s*$")  # an amount given as an example
_TOTAL = re.compile(r"一共|总共|加起来|合计|加一起|总计|一起多少")
_QUESTION_END = re.compile(r"[?？。;；!！\n]|(?<=[吗呢])[,，]")
_CLAUSE_END = re.compile(r"[,.;!?，。；！？\n]")
_PART_END = re.compile(r"[,.;!?，。；！？\s]")  # a clause, or a part of one typed without marks
_HOW_MUCH = re.compile(r"多少|几块|几多钱|好多钱")
MAX_CARDS = 100  # the most cards a figure without 张 is read as (more is an amount of money)
_CARDS = re.compile(rf"({STARTING_NUMBER})\s*(?:张|个|位|名|人)")
_PIECES = re.compile(rf"({STARTING_NUMBER})\s*件")
# Pieces said to lack a label ("有5件没贴", "其中3箱标签掉了"): fewer than the waybill's, so some, not all
_UNLABELLED = re.compile(rf"({STARTING_NUMBER})\s*[件箱张个](?:货)?的?(?:标签|条码)?(?:没|未|没有)(?:贴|有标签)|"
                         rf"({STARTING_NUMBER})\s*[件箱张个](?:货)?的?(?:标签|条码)?掉了")
# Days past the free ones ("晚了两天提", "逾期3天"), not the day of pickup counted from the notice
_LATE = re.compile(rf"(?:晚了|晚|逾期了?|超期了?|超了|超出了?|多放了)\s*({STARTING_NUMBER})\s*天")
# The notice's day: "通知是11月28号", "28号通知的", "28号接到通知"
_NOTICE_DAY = re.compile(rf"通知(?:是|在|日期是)?\s*(?:\d{{1,2}}月)?({STARTING_NUMBER})\s*[号日]|({STARTING_NUMBER})\s*[号日]\s*(?:接到|收到|发的|来)?通知")
_PICKED = re.compile(r"[提拿取]")  # a date said with one of these is the pickup's
# An amount said as a range: 两三千, 七八百, 一两万 (two neighbouring digits and a magnitude); 一万二三, 三千五六 (a
# magnitude, then two neighbouring digits of the next one down); 2000到3000, 2000-3000
_CN_DIGIT = "[一二两三四五六七八九]"
_NOT_AFTER = r"(?![零〇一二两三四五六七八九十百千万\d件箱个包袋天日号次票张台])"  # 七八十个, 三五天: no money
_RANGE_DIGITS = re.compile(rf"(?<![零〇一二两三四五六七八九十百千万\d])({_CN_DIGIT})({_CN_DIGIT})([十百千万]+){_NOT_AFTER}")
_RANGE_TAIL = re.compile(rf"(?<![零〇一二两三四五六七八九十百千万\d])({_CN_DIGIT}|\d)([万千])({_CN_DIGIT})({_CN_DIGIT}){_NOT_AFTER}")
_RANGE_ARABIC = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(?:元|块)?\s*(?:-|~|～|到|至)\s*(\d+(?:\.\d+)?)\s*(万|千)?(?![\d号日月点])")
_MONTHS_AGO = re.compile(r"(上上|上|这|本)个?月|去年")
# A month named alone (九月份发的货, 9月发的): the latest such month not after this one
_MONTH_NAMED = re.compile(r"(?<![\d一二三四五六七八九十])(1[0-2]|[1-9]|十[一二]?|[一二三四五六七八九])月(?!\d|[一二三四五六七八九十]+[号日])")


@dataclass
class FeeAnswer:
    """What the desk says: texts, the topic they were about, and what the customer may press next."""

    texts: list[str] = field(default_factory=list)
    topic: str | None = None  # the topic answered (the conversation follows it)
    options: list[str] = field(default_factory=list)  # buttons: answer titles, storage lines, 登记核查
    problem: str | None = None  # too_large, negative: the engine says so
    offer_check: bool = False  # the customer was charged more than the standard: offer a pricing check
    took: bool = False  # figures of a storage quote were taken; the engine asks for the next one
    amount: Decimal | None = None  # a storage quote's fee, for the total beside the other fees
    invites: bool = False  # the last text invites the customer's figures (the topic's ask)
    check: str | None = None  # a disputed charge: the complaint category that checks it

    @property
    def understood(self) -> bool:
        return bool(self.texts) or self.problem is not None or self.took


def _questions(said: str) -> list[str]:
    """The questions of a message: parted by their marks, and, typed without marks, by spaces, each with the
    words before it that ask nothing ("我发玻璃 易碎的 保价怎么算": one; "会员卡怎么办 要钱吗": two)."""
    questions: list[str] = []
    for part in _QUESTION_END.split(said):
        asked, setting = [], ""
        for chunk in part.split():
            if QUESTION.search(chunk):
                asked.append(f"{setting} {chunk}".strip())
                setting = ""
            else:
                setting = f"{setting} {chunk}".strip()
        if setting:  # words after the last question: more of it ("保价怎么算 货值两万")
            asked = [*asked[:-1], f"{asked[-1]} {setting}"] if asked else [setting]
        questions += asked
    return questions


class FeeDesk:
    """Answers fee and policy questions; build once from the policies and the known place names."""

    def __init__(self, policies: Policies, places: tuple[str, ...]):
        self.policies = policies
        self.places = places
        self._words = {tid: [fold(w).casefold() for w in topic.words] for tid, topic in policies.topics.items()}

    # -- reading ------------------------------------------------------------------------------------

    def names_topic(self, text: str) -> str | None:
        """The topic a message names first (保价, 代收), if any."""
        said = fold(text).casefold()
        hits = [(said.find(w), tid) for tid, words in self._words.items() for w in words if w in said]
        return min(hits)[1] if hits else None

    def _named_after(self, said: str, start: int, besides: set) -> list[tuple[int, str]]:
        """The topics other than `besides` named after position `start`, each where it is first named."""
        firsts = []
        for tid, words in self._words.items():
            places = [at for at in (said.find(w, start) for w in words) if at >= 0] if tid not in besides else []
            if places:
                firsts.append((min(places), tid))
        return sorted(firsts)

    def without_insurance_told(self, said: str) -> str:
        """The message without insurance told as done (已保价2000, 没保价), unless it asks something."""
        return said if not self.tells_insurance(said) else _INSURED_AMOUNT.sub(" ", said)

    def tells_insurance(self, text: str) -> bool:
        """Insurance told as done (已保价2000, 没保价) in a message that asks nothing: a fact of a claim."""
        said = fold(text).casefold()
        if not _INSURED.search(said):
            return False
        # "少了一件 到底赔多少钱 没保价": what it asks is the claim's payout, not the fee ("没保价的话丢了怎么赔": the rule)
        claim_asked = bool(_COMPENSATION.search(said)) and not _FEE_ASKED.search(said) and not _SUPPOSED.search(said)
        return claim_asked or not QUESTION.search(said)

    def asks_in_a_clause(self, text: str) -> bool:
        """Whether a part of the message that names a topic asks about it ("…代收5000手续费多少"), not only
        names it in a story asked about elsewhere ("让我付运费和代收款一共一万二…怎么办")."""
        parts = [p for clause in _CLAUSE_END.split(fold(text).casefold()) for p in clause.split()]
        return any(QUESTION.search(p) and any(w in p for words in self._words.values() for w in words) for p in parts)

    def is_question(self, text: str, found: Entities) -> bool:
        """Tells whether a message asks the desk something: it names a topic and asks, or gives an amount for
        it; or it gives the freight and the day of a late pickup ("运费300元，第十天，南昌")."""
        said = fold(text).casefold()
        named = self.names_topic(text)
        if named is None:
            return self._storage_figures(said, found)
        if named == "insurance" and self.tells_insurance(text):
            return False  # "少了一件…已保价2000": a fact of the claim, nothing asked
        return bool(found.money) or bool(QUESTION.search(said))

    def topic_of(self, text: str, found: Entities) -> str | None:
        """The topic a question is about: the one it names, or storage for its figures."""
        return self.names_topic(text) or ("storage" if self._storage_figures(fold(text).casefold(), found) else None)

    def _storage_figures(self, said: str, found: Entities) -> bool:
        """The freight and the day of a late pickup: "第N天", or a time with a word of pickup or storage
        ("昨晚没装车，运费贵了" has a time and a freight, and is no storage question)."""
        pickup = bool(_PICKUP.search(said))
        return FREIGHT_WORD in said and bool(found.nth_days or (pickup and (found.durations or found.dates)))

    def answer(self, text: str, found: Entities, context: str | None, facts: dict[str, str], today: date,
               opening: bool = False) -> FeeAnswer:
        """Answers one message. context: the topic of the conversation, for questions that name none
        ("那两千呢"); facts: the storage figures gathered so far (updated in place)."""
        said = fold(text).casefold()
        named = self.names_topic(text)
        if not found.money and found.waybills and (named or context) in ("cod", "insurance", "storage"):
            # "100001呢" after a fee: digits alone are the next amount, not a waybill
            # (not one named a waybill: "单号6655443322" after a fee question is the goods', not an amount)
            found = replace(found, money=tuple((said.find(w.lower()), Decimal(w)) for w in found.waybills
                                               if w.isdigit() and not introduced_as_waybill(said, w.lower())))
        storage_said = named == "storage" or self._storage_figures(said, found)
        topic = named or ("storage" if storage_said else context)
        if topic is None:
            return FeeAnswer()
        not_priced = self._not_priced(said, topic, bool(found.money))
        if not_priced is not None:
            return not_priced
        ranges = _ranges(said, found.money)
        if ranges:  # each end of 2000到3000 is no amount of its own (two quotes and a total would be wrong)
            ends = {at for r in ranges for at in (r[0], r[3])}
            found = replace(found, money=tuple(m for m in found.money if m[0] not in ends))
        priced = self._by_fee(said, found, topic, storage_said, context)
        ranged: dict[str, list[tuple[Decimal, Decimal]]] = {}  # the fee each range is for, found as for an amount
        for at, low, high, _ in ranges:
            fee = next(iter(self._by_fee(said, replace(found, money=((at, low),)), topic, storage_said, context)), None)
            if fee in ("cod", "insurance") and 0 < low < high <= MAX_AMOUNT:
                ranged.setdefault(fee, []).append((low, high))
        for value in [v for values in priced.values() for v in values]:
            if value <= 0:
                return FeeAnswer(topic=topic, problem="not_positive")
            if value > MAX_AMOUNT:
                return FeeAnswer(topic=topic, problem="too_large")
        reply = FeeAnswer(topic=topic)
        totals: list[Decimal] = []
        compensation = bool(_COMPENSATION.search(said)) and not _FEE_ASKED.search(said)
        for fee_topic in ("cod", "insurance"):
            if fee_topic == "insurance" and compensation:
                continue  # what a claim pays is the policy's answer, not a fee quote
            amounts = priced.get(fee_topic, [])
            if amounts:
                facts[f"amount:{fee_topic}"] = str(amounts[-1])
            elif topic == fee_topic and f"amount:{fee_topic}" in facts and self._asks_the_fee_again(said, topic):
                # "保价费多少" after the quote: the quote again, without the notes that came with it, and not counted
                # again in a total ("加起来一共多少" adds each fee once)
                start = len(reply.texts)
                self._quote(fee_topic, Decimal(facts[f"amount:{fee_topic}"]), said, found, reply, [])
                del reply.texts[start + 1:]
            for amount in amounts:
                self._quote(fee_topic, amount, said, found, reply, totals)
            for low, high in ranged.get(fee_topic, []):  # both ends quoted, neither counted in a total
                reply.texts.append(between_text(low, high, self.policies))
                for end in (low, high):
                    self._quote(fee_topic, end, said, found, reply, [])
        # a freight is a storage figure only where storage is asked about ("现在要开票 运费合计3200": the invoice's)
        if topic == "storage" or (priced.get("storage_freight") and (storage_said or context == "storage")):
            storage = self._storage(said, found, facts, today, priced.get("storage_freight", []), context == "storage")
            if storage is not None:
                if not reply.texts:
                    reply.topic = "storage"
                reply.texts += storage.texts
                reply.options += storage.options
                if storage.amount is not None:
                    totals.append(storage.amount)
                if not storage.texts:
                    reply.took = True
                    return reply  # the engine asks for the storage figure still missing
        cards = self._cards(said)
        if "会员卡" in said or topic == "membership":
            # a bare figure after a card question is a number of cards ("3呢"), not "15000的手续费"
            if cards or (found.money and context == "membership" and named is None and found.money[0][1] <= MAX_CARDS):
                quote = membership_fee(self.policies, cards or int(found.money[0][1]))
                reply.texts.append(quote.explanation)
                totals.append(quote.amount)
                reply.topic = reply.topic if len(reply.texts) > 1 else "membership"
        if topic == "labels":
            self._labels(said, found, reply, facts)
        if topic == "invoice":
            shipped = self._shipped(said, found, today)
            if shipped is not None:
                reply.texts.append(invoice_deadline(shipped, today, self.policies).explanation)
        quoted = [Decimal(a) for a in facts.get("quoted", "").split(",") if a]
        if len(totals) > 1:
            reply.texts.append(total_text(sum(totals, Decimal(0)), self.policies))
        elif totals and quoted and _TOTAL.search(said):  # "再加代收五千 一共多少钱": with the quotes before it
            reply.texts.append(total_text(sum(quoted + totals, Decimal(0)), self.policies))
        if totals:
            facts["quoted"] = ",".join(str(a) for a in quoted + totals)
        elif _TOTAL.search(said) and len(quoted) > 1:  # "加起来一共多少": the quotes given so far
            reply.texts.append(total_text(sum(quoted, Decimal(0)), self.policies))
        if reply.texts:
            extra = self._policy_answer(said, reply.topic or topic, False, context, figures=False)
            reply.texts += [t for t in extra.texts if t not in reply.texts]
            # "代收三千五 另外再问下会员卡要钱吗": a topic named after the figures, asked about in its own words
            quoted = {reply.topic or topic, *(t for t in ("cod", "insurance") if priced.get(t)), *ranged}
            last_figure = max([at for at, _ in found.money] + [r[3] for r in ranges], default=0)  # a range's too
            for at, other in self._named_after(said, last_figure, quoted):
                more = self._policy_answer(said[at:], other, False, None)
                reply.texts += [t for t in more.texts if t not in reply.texts]
            return reply
        return self._policy_answer(said, self._asked_topic(said, topic), named is not None or opening, context)

    def amounts_told(self, text: str, found: Entities, context: str | None) -> dict[str, Decimal]:
        """The last amount a message gives for each fee (运单 PT20261120 代收3500), without pricing it."""
        said = fold(text).casefold()
        topic = self.names_topic(text) or context
        priced = self._by_fee(said, found, topic or "", False, context) if topic else {}
        return {fee: priced[fee][-1] for fee in ("cod", "insurance") if priced.get(fee)}

    def _asks_the_fee_again(self, said: str, topic: str) -> bool:
        """"保价费多少", "手续费多少" with no amount: how much, and no other question of the topic (最多能保多少)."""
        cues = [fold(c).casefold() for a in self.policies.topics[topic].answers.values() for c in a.cues]
        asked = _FEE_ASKED.findall(said)  # "扣了多少": the 扣 of the fee table's cues is part of asking how much
        other = [c for c in cues if not (_HOW_MUCH.search(c) or _FEE_ASKED.search(c) or any(c in a for a in asked))]
        return bool(_HOW_MUCH.search(said)) and not _TOTAL.search(said) and not any(c in said for c in other)

    def _asked_topic(self, said: str, topic: str) -> str:
        """Of the topics a message names, the one named where it asks ("每天都发代收 有没有会员卡": the card),
        when the one named first is only said in passing; else the first."""
        parts = [p for clause in _CLAUSE_END.split(said) for p in clause.split()]  # typed without marks: spaces too
        asks = [p for p in parts if QUESTION.search(p)]
        if any(w in p for p in asks for w in self._words[topic]):
            return topic
        return next((tid for p in asks for tid, words in self._words.items() if any(w in p for w in words)), topic)

    def _not_priced(self, said: str, topic: str, amounts: bool) -> FeeAnswer | None:
        """A charge the customer disputes (没人通知就收保管费: its answer alone and the check), or a rule asked
        in words that hold a number (通知那天算不算一天, with no amount): answered, not priced."""
        for answer_id, answer in self.policies.topics[topic].answers.items():
            if (answer.check or (answer.no_quote and not amounts)) and any(fold(c).casefold() in said for c in answer.cues):
                return FeeAnswer([topic_answers(topic, self.policies)[answer_id]], topic, check=answer.check)
        return None

    def _by_fee(self, said: str, found: Entities, topic: str, storage_said: bool, context: str | None = None) -> dict[str, list]:
        """Puts each amount with the fee named nearest to it: before it in its clause, then after it
        in its clause, then anywhere before, then the topic of the message; an amount in a part of its own that
        names no topic follows the fee the conversation is about ("那一万五千块呢 还有要办会员卡吗": the COD fee)."""
        marks = sorted((m.start(), m.end(), tid) for tid in ("cod", "insurance", "storage")
                       for w in self._words[tid] for m in re.finditer(re.escape(w), said))
        marks += sorted((m.start(), m.end(), "storage_freight") for m in re.finditer(FREIGHT_WORD, said))
        marks.sort()
        priced: dict[str, list] = {}
        before: tuple[str, Decimal] | None = None  # the amount priced before this one, and its fee
        for at, value in found.money:
            if before is not None and _EXAMPLE.search(said[max(0, at - 5):at]) and before[1] in priced.get(before[0], []):
                priced[before[0]].remove(before[1])  # "一万出头呢，比如一万零五百": the example is the amount meant
            if _CHARGED.search(said[max(0, at - 6):at]) or _SUMMED.search(said[max(0, at - 12):at]):
                priced.setdefault("charged", []).append(value)
                continue
            token = _AMOUNT_TOKEN.match(said, at)
            checked = _FEE_BEFORE.search(said[max(0, at - 4):at]) and _GUESSED_AFTER.match(said, token.end() if token else at)
            if _GUESSED.search(said[max(0, at - 9):at]) or checked:
                continue  # the quote that follows answers it
            clause_start = max([m.end() for m in _CLAUSE_END.finditer(said, 0, at)], default=0)
            clause_end = next((m.start() for m in _CLAUSE_END.finditer(said, at)), len(said))
            before = [m for m in marks if clause_start <= m[1] <= at]
            after = [m for m in marks if at < m[0] < clause_end]
            anywhere = [m for m in marks if m[1] <= at]
            chosen = (before[-1] if before else after[0] if after else anywhere[-1] if anywhere else None)
            fee = chosen[2] if chosen else topic
            if chosen is None and context in ("cod", "insurance") and topic not in ("cod", "insurance", "storage"):
                part_start = max([m.end() for m in _PART_END.finditer(said, 0, at)], default=0)
                part = said[part_start:next((m.start() for m in _PART_END.finditer(said, at)), len(said))]
                if not any(w in part for words in self._words.values() for w in words):
                    fee = context
            if fee == "storage" and storage_said:
                fee = "storage_freight"  # 保管费 names the topic; the amount is the freight
            priced.setdefault(fee, []).append(value)
            before = (fee, value)
        return priced

    # -- quotes -------------------------------------------------------------------------------------

    def _quote(self, topic: str, amount: Decimal, said: str, found: Entities, reply: FeeAnswer,
               totals: list[Decimal]) -> None:
        if amount == 0:
            return
        if topic == "cod":
            quote = cod_fee(amount, self.policies)
            reply.texts.append(quote.explanation)
            totals.append(quote.amount)
            return
        limits, refused = self._insurance_limits(said)
        if limits is not None and refused:  # 古董花瓶值5万: no fee to quote, the rule instead
            reply.texts.append(limits)
            return
        quote = insurance_fee(amount, self.policies)
        reply.texts += [quote.explanation, *quote.notes]
        totals.append(quote.amount)
        if limits is not None:  # fragile goods: what the fee covers for them
            reply.texts.append(limits)

    def charged_check(self, text: str, found: Entities) -> FeeAnswer | None:
        """When the customer says what they were charged for a collection and it is not the standard
        fee: the standard, and the offer of a check."""
        said = fold(text).casefold()
        priced = self._by_fee(said, found, "cod", False)
        charged, amounts = priced.get("charged"), priced.get("cod")
        if not charged or not amounts or not 0 < amounts[0] <= MAX_AMOUNT:
            return None
        standard = cod_fee(amounts[0], self.policies)
        if standard.amount == charged[0]:
            return None
        return FeeAnswer([standard.explanation, cod_charged_differs(standard, charged[0], self.policies)], "cod",
                         offer_check=True)

    def _storage(self, said: str, found: Entities, facts: dict[str, str], today: date, freights: list,
                 in_storage: bool) -> FeeAnswer | None:
        storage = self.policies.storage
        before = dict(facts)
        notice, pickup = _notice_and_pickup(said, found, today, _notice_day(said), facts if in_storage else {})
        days = _days(found, today, notice, pickup)
        late_by = self._count(_LATE, said)
        if late_by is not None and late_by < 366:
            days = storage.free_days + late_by  # "晚了两天提": two days past the free ones
        counted_otherwise = late_by is not None or bool(found.nth_days or found.durations)
        for key, when in (("notice", notice), ("pickup", pickup)):  # a correction of one keeps the other
            if counted_otherwise:
                facts.pop(key, None)  # a day counted otherwise (今天第六天了) leaves no dates to correct
            elif when is not None:
                facts[key] = when.isoformat()  # 下礼拜三才能去, before the notice's day is told: kept for it
        later = [d for d in found.dates if d > today]
        if days is None and in_storage and facts.get("days") and later and len(later) == len(found.dates):
            days = int(facts["days"]) + (later[0] - today).days  # "如果明天去提呢": the day counted so far, and more
        if days is None and in_storage and facts.get("freight") and not facts.get("days"):
            bare = re.fullmatch(r"\s*(\d{1,3})\s*天?\s*", said)
            if bare:
                days = int(bare.group(1))  # a bare "5" answers "which day is it?"
        if days is not None:
            facts["days"] = str(days)
        day_counts = list(found.nth_days) or [int(d.days) for d in found.durations if d.unit in ("day", "week", "month")]
        if len(freights) > 1 and len(day_counts) == len(freights):  # 一票运费500 放了5天，一票运费800 放了7天
            facts["tickets"] = ",".join(f"{f}:{d}" for f, d in zip(freights, day_counts))
        elif freights or days is not None:
            facts.pop("tickets", None)  # one ticket's figures: the tickets before are done with
        if freights:
            facts["freight"] = str(freights[0])
        elif found.money and in_storage and not facts.get("freight"):
            facts["freight"] = str(found.money[0][1])
        region = None
        for r in storage.regions:  # a line chosen by its button
            if r.short in said or fold(r.name) in said:
                region = r
        places = [c for c in found.cities]
        if region is not None:
            facts["city"], facts["place"] = f"region:{region.id}", ""
        elif places:
            routed = route_region(places, self.policies)
            if routed is not None and not isinstance(routed, str):
                outside = [p for p in places if find_region(p, self.policies) is routed]
                facts["city"], facts["place"] = f"region:{routed.id}", outside[0] if outside else ""
            else:  # the place in no line of the table (厦门发昆明: 昆明), or a route between two other places
                facts["city"] = routed if isinstance(routed, str) else places[0]
        unchanged = {k: facts.get(k) for k in STORAGE_NEEDS} == {k: before.get(k) for k in STORAGE_NEEDS}
        again = unchanged and in_storage and all(facts.get(n) for n in STORAGE_NEEDS) and bool(_HOW_MUCH.search(said))
        if again:
            unchanged = False  # "要交多少" after the quote: the same figures, quoted again
        if unchanged:
            if in_storage and facts.get("freight") and facts.get("days") and not facts.get("city") and said.strip():
                # asked for the line and given no place kefu knows: the lines to choose from, never the words echoed
                return FeeAnswer([topic_text("storage", storage.prompts.city_again, self.policies)], "storage",
                                 options=[r.short for r in storage.regions])
            return None
        city = facts.get("city", "")
        chosen = next((r for r in storage.regions if city == f"region:{r.id}"), None)  # a line, not a place
        if not all(facts.get(need) for need in STORAGE_NEEDS):
            if not facts.get("freight") and chosen is not None and city != before.get("city"):
                # "发到重庆的货 仓储费每天多少": the line's share now, the figure when the freight is told
                told = line_share_text(chosen, facts.get("place", ""), self.policies)
                if told is not None:
                    return FeeAnswer([told], "storage")
            if not facts.get("freight") or not facts.get("days"):
                return FeeAnswer([], "storage")  # the engine asks for the next figure
            if int(facts["days"]) > storage.free_days:
                return FeeAnswer([], "storage", options=[r.short for r in storage.regions])
        tickets = [t.split(":") for t in facts.get("tickets", "").split(",") if t] or [(facts["freight"], facts["days"])]
        results = [storage_fee(Decimal(freight), int(days), chosen.places[0] if chosen else city, self.policies,
                               place=facts.get("place", "")) for freight, days in tickets]
        unknown = next((r for r in results if isinstance(r, UnknownCity)), None)
        if unknown is not None:
            del facts["city"]
            return FeeAnswer([unknown.message], "storage", options=[r.short for r in storage.regions])
        # The figures stay: "第4天呢" changes one of them and asks again.
        # quoted again ("那一共多少"): already among the quotes a total sums, not added a second time
        amount = sum((r.amount for r in results), Decimal(0))  # type: ignore[union-attr]  # no UnknownCity left
        texts = [r.explanation for r in results]  # type: ignore[union-attr]
        if len(results) > 1:
            texts.append(total_text(amount, self.policies))
        return FeeAnswer(texts, "storage", amount=None if again else amount)

    def _labels(self, said: str, found: Entities, reply: FeeAnswer, facts: dict[str, str]) -> None:
        labels = self.policies.labels
        if any(fold(c) in said for c in labels.answers["reward"].cues):
            penalty = found.money[0][1] if found.money else None  # "罚了30，我举报能拿多少"
            if penalty is not None and 0 < penalty <= MAX_AMOUNT:
                reply.texts.append(label_reward(penalty, self.policies))
            return  # "我举报别的公司标签没贴 有奖励吗": the reward is asked, not the fine
        faults = [(said.find(fold(w)), len(w), kind) for kind, words in labels.fault_words.items() for w in words
                  if fold(w) in said]
        if not faults:
            return
        fault = max(faults, key=lambda f: (f[1], -f[0]))[2]
        unlabelled = _UNLABELLED.search(said)
        some = number(unlabelled.group(1) or unlabelled.group(2)) if unlabelled else None
        counts = [c for c in (self._count(_PIECES, m.group(0)) for m in _PIECES.finditer(said)) if c and c != some]
        # the waybill's pieces: the count that is not the unlabelled one ("一票60件 有5件没贴": 60), else those said before
        pieces = max(counts, default=0) or int(facts.get("label_pieces", 0)) or None
        if fault == "missing" and some is not None and pieces and some < pieces:
            fault = "incomplete"  # 5 of 60 not labelled: not all labelled (贴不全), not none (全部未贴)
        if pieces:
            facts["label_pieces"] = str(pieces)
        quote = label_penalty(pieces, fault, self.policies)
        if quote is not None:
            reply.texts.append(quote.explanation)

    def _cards(self, said: str) -> int | None:
        """How many cards: the last count said, not the 一张 of a price ("会员卡多少钱一张，我们要办两张": two)."""
        counts = [self._count(_CARDS, m.group(0)) for m in _CARDS.finditer(said)
                  if not re.search(r"(?:钱|块|元)\s*$", said[max(0, m.start() - 2):m.start()])]
        return next((c for c in reversed(counts) if c), None)

    def _count(self, pattern: re.Pattern, said: str) -> int | None:
        m = pattern.search(said)
        value = number(m.group(1)) if m else None
        return int(value) if value is not None and value == value.to_integral_value() and 0 < value < 100000 else None

    def _shipped(self, said: str, found: Entities, today: date) -> date | None:
        """The day the goods were shipped, when an invoice question says (上上个月发的货, 10月15号发的)."""
        if found.dates:
            return min(found.dates)
        m = _MONTHS_AGO.search(said)
        # a month counted back says when it shipped; a month named may be today's ("上个月的运费…现在12月了")
        named = None if m is not None else _MONTH_NAMED.search(said)
        if named is not None:
            month = int(number(named.group(1)))  # type: ignore[arg-type]  # 9 or 九: the pattern holds only months
            return date(today.year if month <= today.month else today.year - 1, month, 1)
        if m is None:
            return None
        if m.group(0) == "去年":
            return date(today.year - 1, 12, 1)
        back = {"上上": 2, "上": 1, "这": 0, "本": 0}[m.group(1)]
        year, month = divmod(today.year * 12 + today.month - 1 - back, 12)
        return date(year, month + 1, 1)

    # -- policy questions ---------------------------------------------------------------------------

    def _policy_answer(self, said: str, topic: str, named: bool, context: str | None, figures: bool = True) -> FeeAnswer:
        """The answer each question of the message asks for (到付的发票谁开？开专票要啥资料？: two); the
        overview when a topic is first asked about; the answers' titles as buttons when it is unclear.
        figures=False leaves out the answers that state the figures a quote already gave."""
        policies = self.policies
        entry = policies.topics[topic]
        rendered = topic_answers(topic, policies)
        texts: list[str] = []
        for question in _questions(said) or [said]:
            limits, refused = self._insurance_limits(question) if topic == "insurance" else (None, False)
            if limits is not None and refused:
                texts.append(limits)
                continue  # goods that cannot be insured: no fee to explain
            scored = []
            for answer_id, answer in entry.answers.items():
                hits = [c for c in answer.cues if fold(c).casefold() in question]
                if hits and (figures or not answer.figures):
                    scored.append((not answer.overview, max(map(len, hits)), len(hits), answer_id))
            if scored:
                best = max(scored)[3]
                texts += [rendered[best]] + [rendered[a] for a in entry.answers[best].also]
            if limits is not None:  # fragile goods: the fee asked about, then what it covers for them
                texts.append(limits)
        if texts:
            return FeeAnswer(list(dict.fromkeys(texts)), topic)
        if not figures:
            return FeeAnswer([], topic)
        if named and topic != context:  # a topic just opened: what the manual says about it
            overview = [rendered[a] for a, answer in entry.answers.items() if answer.overview]
            if entry.ask is not None:
                overview.append(topic_text(topic, entry.ask, policies))
            return FeeAnswer(overview, topic, invites=entry.ask is not None)
        return FeeAnswer([], topic, options=[a.title for a in entry.answers.values() if a.title])

    def _insurance_limits(self, said: str) -> tuple[str | None, bool]:
        """Refuses goods that cannot be insured, or explains the total-loss-only rule for fragile ones; and
        whether it refused."""
        insurance = self.policies.insurance
        for groups, refused in ((insurance.not_insurable, True), (insurance.loss_only.goods, False)):
            goods = goods_named(said, groups)
            if goods is not None:
                return insurance_limits(goods, refused, self.policies), refused
        return None, False

    def overview(self, topic: str) -> FeeAnswer:
        """What the manual says about a topic, for a customer who chose it from the menu."""
        return self._policy_answer("", topic, True, None)

    def by_title(self, topic: str, text: str) -> list[str]:
        """The answer whose title the customer chose (a button), with the answers said with it; else none."""
        said = fold(text).strip().casefold()
        for answer_id, answer in self.policies.topics[topic].answers.items():
            if answer.title and fold(answer.title).casefold() == said:
                rendered = topic_answers(topic, self.policies)
                return [rendered[answer_id]] + [rendered[a] for a in answer.also]
        return []

    def prompt(self, topic: str, facts: dict[str, str]) -> str | None:
        """What to ask next in a storage quote that lacks a figure, if anything."""
        storage = self.policies.storage
        if topic == "storage" and any(facts.get(need) for need in STORAGE_NEEDS):
            missing = next((need for need in STORAGE_NEEDS if not facts.get(need)), None)
            if missing is not None:
                return topic_text(topic, getattr(storage.prompts, missing), self.policies)
        return None


def _ranges(said: str, money: tuple[tuple[int, Decimal], ...]) -> list[tuple[int, Decimal, Decimal, int]]:
    """The amounts said as ranges, each as (where it starts, low, high, where its second end starts); figures
    joined by 到 or - only where both were read as money (11-28 is a date, 138-1234 a phone)."""
    amounts = {at for at, _ in money}
    found = []
    for m in _RANGE_DIGITS.finditer(said):
        first, second, size = number(m.group(1)), number(m.group(2)), number("一" + m.group(3))
        if first is not None and second is not None and size is not None and first < second:
            found.append((m.start(), first * size, second * size, m.start()))
    for m in _RANGE_TAIL.finditer(said):
        head, first, second = number(m.group(1)), number(m.group(3)), number(m.group(4))
        size = 10000 if m.group(2) == "万" else 1000
        if head is not None and first is not None and second is not None and first < second:
            found.append((m.start(), head * size + first * size // 10, head * size + second * size // 10, m.start()))
    for m in _RANGE_ARABIC.finditer(said):
        size = {"万": 10000, "千": 1000}.get(m.group(3) or "", 1)
        low, high = Decimal(m.group(1)) * size, Decimal(m.group(2)) * size
        dash = not re.search("[到至]", m.group(0))  # 11-28 is a day; amounts ranged with a dash are larger
        if low < high and m.start(2) in amounts and (m.start(1) in amounts or size > 1) and not (dash and low < 100):
            found.append((m.start(1), tidy(low), tidy(high), m.start(2)))
    return sorted(found)


def _notice_day(said: str) -> int | None:
    """The day of the month said to be the notice's ("通知是11月28号", "28号通知的"), if one is."""
    m = _NOTICE_DAY.search(said)
    day = number(m.group(1) or m.group(2)) if m else None
    return int(day) if day is not None and 1 <= day <= 31 else None


def _notice_and_pickup(said: str, found: Entities, today: date, notice_day: int | None,
                       known: dict[str, str]) -> tuple[date | None, date | None]:
    """The notice's date and the pickup's among the dates said, each kept from an earlier message when this one
    does not change it ("我打算12月5号去拿", then "哦不对 是11月30号通知的": the 5th stays the pickup). Of several
    dates the notice is the one said to be the notice's, else the first (货12月30号到了通知我 我1月4号才能回来提:
    the 30th, the pickup planned after it, over New Year); a single date is the notice's unless it comes after a
    notice already told (那12月8号去拿呢) or lies ahead with none told."""
    notice = date.fromisoformat(known["notice"]) if known.get("notice") else None
    pickup = date.fromisoformat(known["pickup"]) if known.get("pickup") else None
    dates = list(found.dates)
    told = next((d for d in dates if d.day == notice_day), None)
    if told is None and len(dates) > 1:
        told = dates[0]
    if told is None and len(dates) == 1:
        picked = notice is not None and dates[0] > notice and _PICKED.search(said) and "通知" not in said
        if dates[0] > today or picked:
            return notice, dates[0]
        told = dates[0]
    if told is None:
        return notice, pickup
    return told, next((d for d in dates if d > told), pickup)


def _days(found: Entities, today: date, notice: date | None, pickup: date | None) -> int | None:
    """The day of pickup counted from the notice, the notice day being day 1 ("第5天", "放了5天", or the
    notice's date: notified on the 29th, picked up on the 2nd is day 4); picked up on the day planned, else today."""
    if found.nth_days:
        return found.nth_days[0]
    for duration in found.durations:
        if duration.unit in ("day", "week", "month"):
            return int(duration.days)
    if notice is None:
        return None
    until = pickup if pickup is not None and pickup >= notice else today
    if notice <= until and until - notice < timedelta(days=366):
        return (until - notice).days + 1
    return None
