"""What a message outside a complaint starts: a menu choice, a follow-up, a fee question, a complaint read
by the router (the material one first when a message tells two), or a question back when unsure.

A part of the Engine (dialogs/engine.py), kept apart by what it does; pure like the rest of the engine."""

from __future__ import annotations

import re
from typing import Any

from dialogs.content import HANDOFF
from dialogs.conversation import AFTER, CLARIFY, MENU, Event
from dialogs.entities import extract
from dialogs.folding import fold
from dialogs.intents import Classification
from dialogs.matching import is_number, normalize, pick_option
from dialogs.render import render
from dialogs.repairs import Wants
from dialogs.turn import FOREIGN, MARKUP, asks, MEANINGFUL, NAMING_NUMBERS, OTHER, QUESTION, SHORT_ASK, SHORT_STORY_WORDS, VAGUE, WORDS, Run

# what names a waybill or phone number, taken out with it ("运单号是SH70707070")
_NUMBER_NAMED = r"(?:运单号|单号|运单|电话号码|电话|手机号|手机|号码)?\s*(?:是|为|:|：)?\s*"
PRESSING_ON = 40  # characters at most of "你们快点处理啊", "都有": longer is a story of its own, read as one
SHORT_ANSWER = 6  # characters of a yes or no to an offer (好的，一起登记吧)
# A message read confidently but not certainly as off-topic or vague (今天天气怎么样, boom) is still answered
# as such when no complaint or topic has at least this probability: there is nothing sensible to offer.
PLAUSIBLE = 0.05
WHERE_ENDINGS = "有呢啊呀啦吗嘛哇哦了度喇啫咧嘞"  # what may follow a where-question's last word (到了没有, 到哪了呢, 去咗边度)


# Words around whom a complaint is about that say nothing more ("我要投诉你们那个司机").
_FILLER = re.compile(r"我|是|要|想|投诉|举报|反映|你们|您们|这个|那个|那位|这位|的|了|啊|呀|吧|下|一|昨天|今天|前天|刚才|上次|早上|上午|下午|晚上")


CORRECTION_REST = 4  # what a "never mind" after a case may say besides; more (是后天要到) corrects the case
# a clause that ends in these is cut off before its verb ("老板让我|问一下保价怎么算"): it tells no complaint
CUT_BEFORE_VERB = ("让我", "叫我", "要我", "帮我")


class RoutingMixin:
    """Starts what a message outside a complaint asks for."""

    def _from_menu(self, run: Run, text: str, wants: Wants) -> None:
        """Starts what a message outside any category asks for: an offered choice, a menu entry, or free text."""
        conv, texts = run.conversation, self.shared.texts
        if (wants.bye or conv.state == AFTER and (wants.thanks or wants.cancel)) and self.repairs.has("bye", text):
            self._leave(run)  # "算了 你们快点处理就行 谢谢 没了" at "anything else?", "好的 谢谢 再见": done, so goodbye
            return self._goodbye(run)
        if wants.withdraw and conv.case_number and self._already_recorded(run, text):
            return  # "算了 我不想追究了 撤回吧": the case taken back (noted for staff), not only "anything else?"
        # "不好意思搞错了 是后天要到" after a case: a correction for its staff, not a "never mind"
        corrects_case = (wants.cancel and conv.state == AFTER and conv.case_number
                         and len(self.repairs.rest(text, "cancel")) > CORRECTION_REST)
        if (wants.cancel and not corrects_case) or (wants.thanks and conv.state != CLARIFY):
            if wants.ack and texts.ack_reply is not None:
                if conv.state == AFTER and self._said_last(conv, texts.ack_reply):
                    self._leave(run)  # 嗯 … 行吧: heard twice, nothing more to ask
                    return self._goodbye(run)
                self._say(run, texts.ack_reply)
                if conv.state == AFTER:
                    return  # "anything else?" stays asked: not asked again, nor thanked for
            elif wants.thanks:
                self._say(run, texts.thanks_reply)
            return self._after(run)
        if wants.bye:
            self._leave(run)
            return self._goodbye(run)
        after_case = run.after_case = conv.state == AFTER
        if conv.case_number and texts.recorded is not None and self.repairs.has("recorded", text):
            self._say(run, texts.recorded)  # "你们登记的电话是哪个？": read back, so a wrong one can be put right
            return self._after(run, ask=False)
        if after_case:
            index = pick_option(text, [[label] for label in self._follow_up_labels()])
            conv.state = MENU
            served, conv.memory.served = conv.memory.served, None
            if index is not None:
                return self._follow_up(run, index, text)
            if served and self._request_details(run, text, served):
                return
        if conv.state == CLARIFY:
            offered, source = conv.offered, conv.offered_text
            # The options shown are the offered ones, then back to the menu: a number counts against
            # that list, never against the main menu's numbers the customer cannot see now.
            index = pick_option(text, [self._names(label) for label in offered] + [[self.shared.back_label]])
            if index is None and len(offered) == 1 and len(WORDS.findall(normalize(text))) <= SHORT_ANSWER:
                # 需要现在一起登记吗？ 好的 / 不用了 (a longer answer tells its story and is read as one, below)
                said = pick_option(text, [self.repairs.lists["accept"], self.repairs.lists["decline"]])
                if said == 1:
                    conv.state, conv.offered, conv.offered_text = MENU, [], ""
                    return self._after(run)
                index = 0 if said == 0 else None
            if index is None and is_number(text):
                self._say(run, self.shared.texts.choose_again)
                return self._prompt(run)
            whom = self._about_whom(text, only=True) if index is None else []
            if whom:  # "我要投诉你们客服" while asked which problem: that person's problem, not a press on
                conv.state, conv.offered, conv.offered_text = (MENU, [], "") if len(whom) == 1 else (CLARIFY, whom, text)
                return self._start(run, whom[0], text) if len(whom) == 1 else self._prompt(run)
            named = self._named_outright(normalize(text)) if index is None else []
            if len(named) == 1 and named[0] in self.content.categories:
                # "俺就是想知道货在哪": the answer to "which problem", in the customer's words
                conv.state, conv.offered = MENU, []
                return self._start(run, named[0], text)
            only_entities = index is None and self._only_entities(run, text)
            # "？？", "。。。", "嗯": the question again
            wordless = index is None and (not re.search(r"\w", normalize(text)) or wants.ack)
            if only_entities or wordless or (index is None and self._presses_on(run, text, wants)):
                # a waybill, or "你们快点处理啊", while asked which problem: kept, and the options again with a way out
                conv.offered_text = source if wordless else f"{source}\n{text}"
                run.noted = self._entity_labels(run) if only_entities else []
                if self.repairs.has("confused", text):  # "咋办", "你说啥": the way out now, not the buttons again
                    conv.memory.misses = max(conv.memory.misses, 1)
                # "不知道啥单号", "不对 是昨天不是前天": something told, not the buttons passed over
                aside = self._aside_at_choice(text, wants)
                conv.memory.misses += 0 if aside else 1
                # the likeliest: one offered that the words name outright (货丢了一个礼拜没人管: the claim), else the first
                named = self._named_outright(normalize(conv.offered_text))
                likeliest = next((label for label in offered if label in named), offered[0])
                if likeliest not in self.content.categories or (conv.memory.misses < 2 and not self._strong_lead(run, likeliest)):
                    run.lead += self._noted_line(run)  # what was kept, then the way out, then the question
                    run.lead += render(aside.text, self._blank_values()) if aside else ""
                    if texts.which_one_way_out is not None and (conv.memory.misses or not aside):
                        run.lead += render(texts.which_one_way_out.text, self._blank_values())
                    return self._prompt(run)
                # The buttons passed over twice, or once when all that was told points one way (混了别人的两箱, then
                # the waybill): the likeliest problem, said aloud so that "不对，其实是…" can still change it.
                run.entities = extract(conv.offered_text, self.places, today=self._today(run))
                conv.state, conv.offered = MENU, []
                self._say(run, self.shared.texts.topic_changed, category=self._entry(likeliest).name)
                return self._start(run, likeliest, conv.offered_text if not only_entities else source)
            conv.state, conv.offered = MENU, []
            run.chose_among = offered
            pressed = index is not None and index < len(offered) and normalize(text).casefold() in {
                normalize(n).casefold() for n in self._names(offered[index])}  # a button's label tells no story
            run.describes = not pressed and not is_number(text) and len(WORDS.findall(text)) >= SHORT_STORY_WORDS
            if index == len(offered):  # back to the menu: the waybill and phone told stay for what is chosen there
                return self._show_menu(run)
            if index is not None:
                # The waybill or phone in the message that led to the offer is not asked again; a second
                # complaint's story is the first one's, so only its facts carry over.
                run.entities = extract(f"{source}\n{text}", self.places, today=self._today(run))
                second, conv.memory.second = conv.memory.second == offered[index], None
                # "他送货的时候骂人" chooses the attitude problem and is its account too
                told = run.describes and not second
                # the sofa broken and the driver rude: one delivery, its waybill and phone already given
                same = second and not any(w in source for w in self.routing.other_goods)
                return self._start(run, offered[index], text if told else source, story=not second, account=told,
                                   same_goods=same)
        whom = self._about_whom(text, only=True)
        if whom:  # "司机" at the menu: what a driver can do wrong, not the menu entry that names drivers
            conv.state, conv.offered, conv.offered_text = CLARIFY, whom, text
            return self._prompt(run)
        withdraws = wants.withdraw and not conv.case_number  # "我要撤销投诉" about a case of an earlier conversation
        named = bool(self._named_outright(normalize(text)))
        # "我的货丢了你们到底管不管": a problem named outright is a complaint, not a chase of the case they have
        if (wants.own_status and not named or withdraws) and not run.entities.waybills and not is_number(text):
            return self._my_cases(run)  # "上周申请的退货 退回去了没有": their request, not a new one of its kind
        # 保价5000 right after a disputed payout: the case's, before any menu entry or fee it names (the case looked up
        # only for a message that names such a topic and asks nothing)
        told_topic = self.fees.names_topic(text) in self.routing.case_facts and not QUESTION.search(normalize(text))
        case = run.ledger.find_case(conv.case_number) if after_case and conv.case_number and told_topic else None
        if case is not None and self._case_fact_told(case, text) and self._already_recorded(run, text):
            return
        index = pick_option(text, [names for names, _ in self._menu_entries()])
        if index is not None and self._menu_entries()[index][1] == "insurance" and self.fees.tells_insurance(text):
            index = None  # "少了一件…没保价 那件值800": the insurance is a fact of the complaint, not the topic chosen
        if index is not None:  # a number or a menu entry's name is a choice, not a story to take facts from
            names, label = self._menu_entries()[index]
            said = normalize(text).casefold()
            told = "" if is_number(text) or any(normalize(n).casefold() == said for n in names) else text
            # A topic named in a longer message may sit beside a complaint, or only be part of its story
            # ("我要理赔…照片拍了…有发票"): the fee desk and the router below sort them.
            if not (told and label in self.content.policies.topics and self._complaint_with_fee(run, text, label) is not None):
                return self._start(run, label, told)
        if is_number(text):  # a number no option has
            self._say(run, texts.choose_again)
            return self._show_menu(run, with_prompt=False)
        if self._corrects_case(run, text, wants):
            return
        status_words = self.shared.commands.status
        # "理赔进度怎么样了" → no case of theirs found, "发运单号给我就行" → the waybill: a tracking request for it
        after_no_cases = self._said_last(conv, texts.no_my_cases)
        # "查件 SH…", "你好 查件 SH…": a status word with a waybill and little else
        said = normalize(text)
        short = len(MEANINGFUL.findall(self._without_entities(run, text))) <= 6
        # "喂 货到了没 单号SH… 电话…": where the goods are, and nothing else but the numbers and their names
        bare = NAMING_NUMBERS.sub("", _without_words(self._without_entities(run, text), self.routing.courtesies))
        asks_where = len(WORDS.findall(bare)) <= 10 and any(self._where_asked(said, w) for w in self.routing.where_words)
        if (run.entities.waybills and "tracking" in self.content.categories
                and (wants.own_status or after_no_cases or asks_where
                     or any(said.startswith(w) or (short and w in said) for w in status_words))):
            if not asks_where:  # "查询 SH…" asked with the word for a case's progress: which number is which
                self._say(run, texts.status_by_waybill)
            return self._start(run, "tracking", text)
        if self._only_entities(run, text):  # a waybill or a phone alone: kept for the complaint that follows
            conv.offered_text = f"{conv.offered_text}\n{text}".strip()
            run.noted = self._entity_labels(run)
            return self._prompt(run)
        if self._serve(run, text):
            return
        if self.fees.is_question(text, run.entities):
            complaint = self._complaint_with_fee(run, text, self.fees.topic_of(text, run.entities))
            if complaint is None:
                return self._start(run, self.fees.topic_of(text, run.entities) or "cod", text)
            if self.fees.asks_in_a_clause(text):  # a complaint that also asks a fee: the fee first, then the complaint
                self._side_fee(run, text)
            run.understood = complaint
        if after_case and self._already_recorded(run, text):
            return
        if self.repairs.lost(text) and conv.state == MENU and not run.first_contact and texts.which_one_way_out is not None:
            return self._say(run, texts.which_one_way_out)  # "俺不懂" at the menu: how else to go on, not the list again
        self._route(run, text)

    def _aside_at_choice(self, text: str, wants: Wants) -> Any:
        """What to say to a remark made while asked which problem that tells something instead of choosing: no
        waybill (不知道啥单号) or a detail put right (不对 是昨天不是前天); None for anything else."""
        texts = self.shared.texts
        if wants.cannot_give and self.repairs.cannot_give(text, self.shared.fact_types["waybill"].called):
            return texts.no_waybill_yet
        if wants.correction or normalize(text).startswith(("不对", "不是")):
            return texts.told_noted
        return None

    def _strong_lead(self, run: Run, label: str) -> bool:
        """Whether everything told while asked which problem (the first message and what followed) reads as this
        one with a clause's confidence: enough to go on with it, said aloud, rather than ask a second time."""
        if self.router is None:
            return False
        told = run.conversation.offered_text
        readings = [self.router.classify(self._unnumbered(run, t)) for t in dict.fromkeys((told.split("\n")[0], told))]
        return any(r.label == label and r.confidence >= self.routing.also_threshold for r in readings)

    def _presses_on(self, run: Run, text: str, wants: Wants) -> bool:
        """A message that answers the question "which problem" with no problem of its own ("你们快点处理啊",
        "都有", "你们看着办吧"): not a fee question, a case query or a request, and read as nothing sure."""
        said = normalize(text)
        if not (2 <= len(WORDS.findall(said)) and len(said) <= PRESSING_ON):
            return False  # emoji, markup, a pasted page: no answer to the question at all
        if wants.own_status or wants.human or self.fees.is_question(text, run.entities) or self._command(text):
            return False
        reading = self._understand(run, text)
        return reading is None or not self._sure(reading) or reading.label in (OTHER, VAGUE)

    def _already_recorded(self, run: Run, text: str) -> bool:
        """More about the case just opened (碎了, right after the claim; 就是昨天下午送货那个胖子; 能不能快点):
        added to the case for staff, and said so with when they will be in touch, not a new complaint."""
        conv = run.conversation
        case = run.ledger.find_case(conv.case_number) if conv.case_number else None
        if case is None or case.status != "open" or not case.mine or len(WORDS.findall(text)) < 2:
            return False
        reading = self._understand(run, text)
        same = reading is not None and reading.confidence >= self.routing.threshold and reading.label in [
            case.category, *self.routing.covers.get(case.category, [])]
        unsure = reading is None or reading.label in (OTHER, VAGUE) or not self._sure(reading)
        told = self._case_fact_told(case, text)
        if not (same or unsure or told) or (self.fees.is_question(text, run.entities) and not told):
            return False
        run.turn.events.append(Event("case_detail_added", {"case": case.number, "text": text.strip()}))
        # "我要撤销投诉 货已经发了" (for staff to confirm and close) or "不给电话了" (so staff do not call): on the case,
        # and said so instead of "updated"
        said, texts = self.repairs.read(text), self.shared.texts
        noted = texts.withdraw_noted if said.withdraw else texts.contact_declined if said.cannot_give else None
        if noted is not None:
            self._say(run, noted, case={"number": case.number})
            self._after(run, ask=False)
            return True
        asked = self._faq_asked(case.category, text) if QUESTION.search(normalize(text)) else None
        if asked is not None:  # "转的是哪家你们总知道吧": what the case's own FAQ answers, before the promise
            self._say(run, asked)
        elif said.hurry and texts.hurry_noted is not None:  # "能快点吗": the hurry on the case, not a question for later
            self._say(run, texts.hurry_noted, case={"number": case.number})
        elif texts.question_noted is not None and asks(normalize(text)):
            self._say(run, texts.question_noted)  # "今天晚上能发吗？给个准话": asked of staff, not only "updated"
        self._say_plain(run, render(self.shared.texts.case_updated.text,
                                    {**self._blank_values(), **self._step_values(case.role, case.deadline, case.number)}))
        self._after(run, ask=False)
        return True

    def _case_fact_told(self, case: Any, text: str) -> bool:
        """A topic named without a question after a case it belongs to (保价5000 after a disputed payout:
        routing.case_facts): more about the case, not a fee asked."""
        topic = self.fees.names_topic(text) or ""
        return case.category in self.routing.case_facts.get(topic, []) and not QUESTION.search(normalize(text))

    def _follow_up(self, run: Run, index: int, text: str) -> None:
        """Acts on one of the short follow-up options offered after a case or an answer."""
        action = list(self.shared.follow_up.model_dump())[index]
        if action == "status":
            return self._my_cases(run)
        if action == "human":
            return self._handoff(run, text)
        if action == "bye":
            self._leave(run)
            return self._goodbye(run)
        self._show_menu(run)  # other

    def _follow_up_labels(self) -> list[str]:
        return list(self.shared.follow_up.model_dump().values())

    def _route(self, run: Run, text: str) -> None:
        """Acts on the router's reading: start the category, answer off-topic, or ask which one was meant."""
        conv, texts = run.conversation, self.shared.texts
        reading = self._understand(run, text)
        waiting = self._waiting_case(run)
        asked_for = self._asked_for(reading, text) if reading is not None else None
        # "你好有人吗" after a person was promised: the promise again; "我的货丢了你们到底管不管": the claim
        if waiting is not None and asked_for is None and (reading is None or reading.label in (OTHER, VAGUE) or not self._sure(reading)):
            return self._say(run, texts.handoff_again, **self._promise(run, waiting.number))
        if reading is None:
            if not run.first_contact:  # a first "你好" just gets the menu after the greeting
                self._say(run, texts.fallback)
            return self._show_menu(run)
        if texts.foreign is not None and FOREIGN.fullmatch(self._unnumbered(run, text)) and reading.label in (OTHER, VAGUE):
            self._say(run, texts.foreign)  # "I cannot read Chinese, English please"
            return self._show_menu(run, with_prompt=False)
        meant = self._unnumbered(run, text)
        meant = self._after_change_word(meant) or meant  # 运费怎么这么贵啊 不对 我想说的是货没送到: the latter part
        void, instead = self._goods_told(meant)  # where the goods are said to be rules complaints out
        if asked_for is not None and asked_for != reading.label:  # "货呢": the words say it, the router half agrees
            reading = run.understood = Classification(asked_for, dict(reading.candidates)[asked_for], reading.candidates, 1.0)
        if self._sure(reading) or self._nothing_else(reading) or asked_for is not None:
            if reading.label == OTHER:
                if not run.first_contact:
                    self._say(run, self.content.other.reply)
                return self._show_menu(run)
            if reading.label == VAGUE or len(MEANINGFUL.findall(normalize(text))) < 2:  # "货": too little to be sure of
                whom = self._about_whom(text)
                if whom:  # "我要投诉司机": what a driver can do wrong, not the whole menu
                    conv.state, conv.offered, conv.offered_text = CLARIFY, whom, text
                    return self._say(run, self.content.other.vague_reply, options=self._current_options(conv))
                self._say(run, self.content.other.vague_reply)
                return self._show_menu(run, with_prompt=False)
            label = reading.label
            later, sure, first = self._second_complaint(run, meant, label)
            if void:  # "货压了三天才送到 送货的司机还凶我": the goods are there, the rudeness is the complaint
                told = [c for c in self._clause_complaints(meant) if c not in void]
                if label in void and (told or instead):
                    label = told[0] if told else instead  # type: ignore[assignment]
                if later in void:
                    later = None
            # the goods first, when the whole message leaves room for them (a clause alone misreads easily)
            weight = dict(reading.candidates).get(later, 0)
            if later in self.routing.prefer.get(label, []) and (weight >= 0.05 or (sure >= 0.9 and first)):
                label, later = later, label  # the goods before the manners: the material problem first
            return self._start_first(run, label, later, text, account=run.describes)
        clauses = sorted(self._clause_complaints(meant), key=lambda c: -dict(reading.candidates).get(c, 0))
        if void and clauses:  # "显示在中转 三天没动了": no goods held at the start, whatever a clause reads as
            clauses = [c for c in clauses if c not in void] or ([instead] if instead else clauses)
        if clauses == ["tracking"] and not void:  # "转到别家物流去了 什么时候能到啊": the question is the transfer's, not a tracking request
            clauses = [self._covering_clause(meant, "tracking") or "tracking"]
        if clauses:  # unsure of the whole, sure of its parts: "货压了五天没发，而且开单的态度还很差"
            label, others = clauses[0], clauses[1:]
            # the goods first, of every complaint the clauses tell (司机放门口就走了 也没打电话 货被雨淋了: the wet goods)
            preferred = [c for c in self.routing.prefer.get(label, []) if c in others]
            label, later = (preferred[0], label) if preferred else (label, next(iter(others), None))
            later = later or self._fee_problem(run, self._chat_clauses.split(normalize(meant)))
            return self._start_first(run, label, later, text)
        offered = [label for label, _ in reading.candidates if self._entry(label) is not None]
        whom = self._about_whom(text, only=True)
        if whom:  # "投诉你们开单的": the problems of the person named, likeliest first
            weight = dict(reading.candidates)
            offered = sorted(set(whom + offered[:1]), key=lambda label: -weight.get(label, 0))  # the likeliest stays
        said = MEANINGFUL.findall(self.repairs.without_requests(text))
        if not offered or (self.repairs.read(text).insult and len(said) < 4):  # abuse with nothing else in it: asked, not guessed
            self._say(run, texts.fallback)
            return self._show_menu(run)
        # a phone or waybill sent before (kept in offered_text) stays with the story for what is chosen
        conv.state, conv.offered, conv.offered_text = CLARIFY, offered, f"{conv.offered_text}\n{text}".strip()
        self._prompt(run)

    def _start_first(self, run: Run, label: str, later: str | None, text: str, account: bool = False) -> None:
        """Starts the first of a message's complaints, the second said to be noted for after it (unless the
        first covers it, or it is only the first one's own question)."""
        conv = run.conversation
        settled = self.routing.settled.get(label)
        if settled is not None and any(normalize(w) in normalize(text) for w in settled.words):
            label, later = settled.to, (None if later == settled.to else later)  # 已经赔了 但是只赔了运费: the payout
        if later in self.routing.covers.get(label, []):
            later = None  # the damage a claim is about is the claim, not a second complaint
        later = self._own_question(run, label, text, later)
        if later is not None:
            self._say(run, self.shared.texts.also_mentioned, category=self._entry(later).name)
        # Before starting: a first complaint whose facts are all in the message ends at once.
        # The message is kept so the second complaint takes its facts from it too.
        conv.later = later
        conv.offered_text = f"{conv.offered_text}\n{text}".strip() if later else conv.offered_text
        self._start(run, label, text, account=account)

    def _own_question(self, run: Run, label: str, text: str, later: str | None) -> str | None:
        """A second complaint that is only a question the first one's FAQ answers ("货要退回来 退回来运费多少": who
        pays the freight back, no pricing complaint): no second (_start answers the question before the first)."""
        asked = self._faq_asked(label, text) if later is not None and QUESTION.search(normalize(text)) else None
        return later if asked is None else None

    def _about_whom(self, text: str, only: bool = False) -> list[str]:
        """The problems of the one person a vague complaint names (routing.about_whom), else none;
        only: when the message says nothing but who ("司机", "投诉你们开单的")."""
        said = fold(text).casefold()
        named = [(entry.problems, words) for entry in self.routing.about_whom.values()
                 if (words := [w for w in map(str.casefold, map(fold, entry.words)) if w in said])]
        if len(named) != 1:
            return []
        problems, words = named[0]
        if only and MEANINGFUL.search(_FILLER.sub("", re.sub("|".join(map(re.escape, words)), "", said))):
            return []
        return [label for label in problems if self._entry(label) is not None]

    def _waiting_case(self, run: Run) -> Any:
        """The open case this conversation was handed to a person on, while no complaint is in progress."""
        handed = run.conversation.memory.handed
        case = run.ledger.find_case(handed) if handed else None
        return case if case is not None and case.status == "open" else None

    def _sure(self, reading: Any) -> bool:
        """Whether the router's reading of a new message is sure enough to act on without asking back:
        its calibrated certainty against routing.certainty (its confidence, without that setting)."""
        if self.routing.certainty is None:
            return reading.confidence >= self.routing.threshold
        return getattr(reading, "certainty", reading.confidence) >= self.routing.certainty

    def _goods_told(self, text: str) -> tuple[set[str], str | None]:
        """The complaints that where the message says the goods are rules out, and what it is instead, if said
        (routing.goods_told)."""
        said, void, instead = normalize(text), set(), None
        for told in self.routing.goods_told:
            if any(normalize(w) in said for w in told.words):
                void |= set(told.void)
                instead = instead or told.instead
        return void, instead

    def _services(self, text: str) -> list[Any]:
        """The requests that are no complaint and no fee a message names (other.answers: 上门取件, 改地址, 招聘)."""
        said = fold(normalize(text)).casefold()
        return [a for a in self.content.other.answers.values() if any(fold(c).casefold() in said for c in a.cues)]

    def _sure_complaint(self, run: Run, text: str) -> bool:
        reading = self._understand(run, text)
        return reading is not None and reading.label in self.content.categories and self._sure(reading)

    def _serve(self, run: Run, text: str) -> bool:
        """Answers a request that is no complaint and no fee, unless the message is surely a complaint ("上门取件的
        司机态度很差"); a fee asked beside it is left to the fee desk ("能不能上门取件 顺便问下保价怎么收费"). What the
        customer says next about it (the new address, where the goods are) goes to a person (_request_details).
        True when the message is handled."""
        served = self._services(text)
        if not served:
            return False
        reading = self._understand(run, text)
        if self._sure_complaint(run, text) and not all(reading.label in a.over for a in served):
            return False
        for answer in served:
            self._say(run, answer)
        if self.fees.is_question(text, run.entities):  # the request's own words are no complaint beside the fee
            self._start(run, self.fees.topic_of(text, run.entities) or "cod", text)
        else:
            self._after(run)
        run.conversation.memory.served = text
        return True

    def _request_details(self, run: Run, text: str, served: str) -> bool:
        """After a request was answered (改地址), what is neither another request, a fee question nor a complaint
        (改到福州市仓山区…, 我在泉州丰泽区 五箱货) is its details: handed to a person with the request."""
        if self._services(text) or self.fees.is_question(text, run.entities) or self._sure_complaint(run, text):
            return False
        run.conversation.memory.served = None
        self._handoff(run, f"{served}\n{text}")
        return True

    @staticmethod
    def _where_asked(said: str, word: str) -> bool:
        """A where-word that ends what it asks ("货到了没", "到了没有呢"), not one that goes on into a complaint
        ("货到了没给我送": arrived, and not delivered)."""
        at = said.find(word)
        while at >= 0:
            after = said[at + len(word):at + len(word) + 1]
            if not after or not WORDS.match(after) or after in WHERE_ENDINGS:
                return True
            at = said.find(word, at + 1)
        return False

    def _asked_for(self, reading: Any, text: str) -> str | None:
        """The complaint the message asks for outright (routing.asked_for), when the router agrees: its reading at even
        odds or better (我姓林 上周发的货到了少了一件 要理赔), or, in a message of little else ("货呢"), among its candidates."""
        said = normalize(text)
        short = len(MEANINGFUL.findall(said)) <= SHORT_ASK
        weight = dict(reading.candidates)
        for label in self._named_outright(said):
            # "我要投诉 货丢了 SH…": a complaint that names no category (vague) is the problem its words name
            if reading.label in (label, VAGUE) or (short and weight.get(label, 0) >= PLAUSIBLE):
                return label
        # a request the message opens with ("我要申请理赔 货物在路上坏了…"): the request, the rest its story
        opening = _without_words(said, self.shared.commands.hello).lstrip(" ，,。.!！")
        return next((label for label, words in self.routing.opens_with.items()
                     if any(opening.startswith(w) for w in words)), None)

    def _named_outright(self, said: str) -> list[str]:
        """The complaints whose words (routing.asked_for) the message says (要理赔, 货丢了, 到底在哪)."""
        return [label for label, words in self.routing.asked_for.items() if any(w in said for w in words)]

    def _nothing_else(self, reading: Any) -> bool:
        """A confident off-topic or vague reading that leaves no complaint or topic plausible (PLAUSIBLE)."""
        return (reading.label in (OTHER, VAGUE) and reading.confidence >= self.routing.threshold
                and not any(self._entry(label) is not None and p >= PLAUSIBLE for label, p in reading.candidates))

    def _complaint_beside_handoff(self, run: Run, text: str) -> str | None:
        """The complaint a request for a person also makes ("运费乱收，多收了一百多，我要投诉到12315"):
        read without the request itself, and only when clearly a complaint: the whole, or the one complaint
        its clauses tell (他妈的什么破公司 货三天没送 我要打12315: the goods not delivered)."""
        if self._command(text) or self.router is None:
            return None
        rest = self.repairs.without_requests(text)
        if len(WORDS.findall(rest)) < 6:
            return None
        reading = self.router.classify(rest)
        # "能不能让真人来跟我说话" leaves words that name no problem: only a clear complaint counts
        if reading.label in self.content.categories and reading.confidence >= 0.95:
            return reading.label
        # the clauses that do not ask for a person ("能不能让真人来跟我说话" has none)
        plain = [c for c in self._told_clauses(text) if not self.repairs.read(c).human]
        told = {r.label for r in map(self.router.classify, plain[:12])
                if r.label in self.content.categories and r.confidence >= self.routing.also_threshold}
        return told.pop() if len(told) == 1 else None

    def _clause_complaints(self, text: str) -> list[str]:
        """The complaints the clauses of a message are confidently read as, in order (none for one clause):
        the clauses its punctuation and joiners make, else, typed without them, the parts between spaces."""
        if self.router is None:
            return []
        for splitter in (self._clauses, self._chat_clauses):
            parts = [c for c in splitter.split(normalize(text)) if len(WORDS.findall(c)) >= 4]
            clauses = [c for c in parts if not self.repairs.read(c).insult]
            if not clauses or (len(clauses) < 2 and len(parts) < 2):
                continue  # one clause is the whole message, already read (abuse set aside, one may do)
            found = [reading.label for reading in map(self.router.classify, clauses[:12])
                     if reading.label in self.content.categories and reading.confidence >= self.routing.also_threshold]
            if found:
                return list(dict.fromkeys(found))
        return []

    def _covering_clause(self, text: str, label: str) -> str | None:
        """The complaint another clause of the message tells, when it covers the one read surely ("转到别家物流去了"
        beside 什么时候能到啊: the transfer includes the tracking); read at least even odds."""
        for clause in self._told_clauses(text)[:12]:
            other = self.router.classify(clause)  # type: ignore[union-attr]
            if label in self.routing.covers.get(other.label, []) and other.confidence >= 0.5:
                return other.label
        return None

    def _told_clauses(self, text: str) -> list[str]:
        """The parts of a message, between marks and spaces, that can tell a complaint: four words or more, and
        no abuse (abuse names no complaint)."""
        return [c for c in self._chat_clauses.split(normalize(text))
                if len(WORDS.findall(c)) >= 4 and not self.repairs.read(c).insult]

    def _complaint_in(self, run: Run, text: str) -> Any:
        """The router's confident reading of a complaint in the message or in one of its clauses
        (货三天没发了…另外问一下代收5000手续费多少: the stranded goods), or None."""
        reading = self._understand(run, text)
        if reading is None:
            return None
        if reading.label in self.content.categories and reading.confidence >= self.routing.threshold:
            return reading
        if not self._set_apart(text):
            return None  # "货放仓库一个星期了，运费800，保管费多少": the story of the fee question, no complaint
        told = next((reading for _, reading in self._clause_complaint_readings(self._unnumbered(run, text))), None)
        if told is None and any(self._about_whom(c, only=True) for c in self._clauses.split(normalize(text))):
            # "我想投诉一下昨天那个司机 还有就是问一下保价…": a complaint about someone, its problem still to ask
            return Classification(VAGUE, 1.0, ((VAGUE, 1.0),), 1.0)
        return told

    def _clause_complaint_readings(self, text: str) -> Any:
        """Each clause of the message (four words or more, at most twelve) the router confidently reads as a
        complaint, with that reading, in order."""
        if self.router is None:
            return
        for clause in [c for c in self._clauses.split(normalize(text))
                       if len(WORDS.findall(c)) >= 4 and not c.rstrip().endswith(CUT_BEFORE_VERB)][:12]:
            reading = self.router.classify(clause)
            if reading.label in self.content.categories and reading.confidence >= self.routing.also_threshold:
                yield clause, reading

    def _set_apart(self, text: str) -> bool:
        """Whether the message sets a second question apart with an aside word (另外, 顺便问下)."""
        return any(word in normalize(text) for word in self.routing.asides)

    def _complaint_with_fee(self, run: Run, text: str, topic: str | None) -> Any:
        """The complaint a message about a fee or policy topic also makes, or None (the fee question alone)."""
        if self._set_apart(text):  # any clause may be it
            found = self._complaint_in(run, text)
        # figures for a fee ("运费300，第4天，福州") are a fee question, unless a complaint is set apart
        elif topic != "invoice" and (run.entities.money or run.entities.nth_days):
            found = self._complaint_beside_fee(run, text, topic)
        else:  # "货一直不发 而且保价费怎么算": the message reads as the fee, its first clause as a complaint
            found = self._complaint_in(run, text) or self._complaint_beside_fee(run, text, topic)
        # "放了好几天了，收货人没来提，会收仓储费吗": where the goods are said to be rules the complaint out
        return None if found is not None and found.label in self._goods_told(text)[0] else found

    def _complaint_beside_fee(self, run: Run, text: str, topic: str | None) -> Any:
        """A complaint in a clause of its own beside a fee question (and its figures), or None: asked about ("运费怎么算的，
        代收货款5000手续费多少": the pricing answer too) or told ("货压了五天还不发，而且代收5000手续费多少": the
        stranded goods). A clause that carries the figures, or tells the fee's own story ("货放仓库一个星期了",
        beside a storage fee: routing.fee_stories), is the fee question's, not a complaint."""
        stories = self.routing.fee_stories.get(topic or "", [])
        return next((reading for clause, reading in self._clause_complaint_readings(self._unnumbered(run, text))
                     if not any(ch.isdigit() for ch in clause) and not extract(clause).money  # 运费五百: the figures
                     and self.fees.names_topic(clause) is None  # "得多少仓储费": the fee question itself
                     and not (QUESTION.search(clause) and self._topic_asks(topic, clause, reading.label))
                     and (QUESTION.search(clause)
                          or (reading.label not in stories and reading.confidence >= self.routing.told_threshold))),
                    None)

    def _topic_asks(self, topic: str | None, clause: str, label: str) -> bool:
        """A question the fee topic answers in its own words ("保价8000要交多少，丢了能赔吗": 能赔 is the
        insurance's question, not a claim; routing.fee_questions)."""
        if label not in self.routing.fee_questions.get(topic or "", []):
            return False
        said = fold(clause).casefold()
        answers = self.content.policies.topics[topic].answers.values()  # type: ignore[index]
        return any(fold(c).casefold() in said for a in answers for c in a.cues)

    def _second_complaint(self, run: Run, text: str, label: str) -> tuple[str | None, float, bool]:
        """Names a second complaint in the same message ("货摔坏了，司机态度还很差"): a clause that the
        router confidently reads as another complaint category; with how sure it is, and whether that
        clause is the message's first (the problem named first)."""
        if label not in self.content.categories or self.router is None:
            return None, 0.0, False
        clauses = [c for c in self._chat_clauses.split(normalize(text))
                   if len(MEANINGFUL.findall(c)) >= 4 and not self.repairs.read(c).insult][:12]  # abuse names no complaint
        for i, clause in enumerate(clauses):
            other = self.router.classify(clause)
            if (other.label in self.content.categories and other.label != label
                    and other.confidence >= self.routing.also_threshold):
                return other.label, other.confidence, i == 0
        problem = self._fee_problem(run, clauses)
        return (problem, 1.0, False) if problem else (None, 0.0, False)

    def _fee_problem(self, run: Run, clauses: list[str]) -> str | None:
        """The fee topic of a clause that tells a matter only a person can look into (…还有上周那票的代收货款到现在
        没到账: its answer hands over), a second problem beside a complaint; or None."""
        for clause in clauses:
            topic = self.fees.names_topic(clause)
            if topic is not None and self._entry(topic) is not None:
                found = extract(clause, self.places, today=self._today(run))
                if self.fees.answer(clause, found, topic, {}, self._today(run)).check == HANDOFF:
                    return topic
        return None

    def _understand(self, run: Run, text: str) -> Any:
        if self.router is None:
            return None
        if run.understood is None:
            unmarked = MARKUP.sub(" ", text)  # "<script>…", "{{name}}": no words of the problem
            text = unmarked if MEANINGFUL.search(unmarked) else text
            # Abuse and calls for a person say nothing about the problem: read without them.
            plain = self.repairs.without_requests(text) if self.repairs.read(text).insult else text
            # "运费怎么这么贵啊 不对 我想说的是货没送到": what follows a change word is what the customer means
            plain = self._unnumbered(run, plain)
            plain = self._glossed(self._after_change_word(plain) or plain)
            run.understood = self.router.classify(plain if WORDS.search(plain) else text)
        return run.understood

    def _glossed(self, text: str) -> str:
        """The message with the Chinese words of the English or pinyin words of a problem in it (routing.glosses):
        the router reads Chinese ("my goods are stuck" reads as 货物滞留)."""
        said = text.casefold()
        extra = [zh for word, zh in self.routing.glosses.items()
                 if re.search(rf"(?<![a-z]){re.escape(word.casefold())}(?![a-z])", said)]
        return f"{text} {' '.join(extra)}" if extra else text

    def _unnumbered(self, run: Run, text: str) -> str:
        """The message without its waybill and phone numbers, which say nothing of the problem and pull the
        router towards the examples that carry numbers ("…装车 耽误我事了 运单号是SH70707070" read as stranded),
        and without insurance told as done ("已保价2000": a fact of the claim, read as the insurance topic)."""
        said = normalize(text)
        for found in (*run.entities.phones, *run.entities.waybills):
            said = re.sub(rf"{_NUMBER_NAMED}{re.escape(found)}", " ", said)
        return self.fees.without_insurance_told(said)

    def _after_change_word(self, said: str) -> str | None:
        """What follows the last change word (不对不对，其实主要是 → 货到了三天都没给我送), when there is enough
        of it to read: the words that name the new topic, without the ones that only announce it."""
        ends = [said.rfind(word) + len(word) for word in self.routing.change_words if word in said]
        rest = said[max(ends):].strip(" ，,。.：:!！") if ends else ""
        return rest if len(rest) >= 4 else None

    def _change_topic(self, run: Run, text: str, eager: bool = False) -> bool:
        """Leaves the current category for another when the message clearly asks for it (不对，其实是…),
        keeping every fact already given. eager: a fee topic holds nothing to lose, any clear reading moves."""
        conv = run.conversation
        # A complaint is left only when the customer says so (不对，其实是…): the router errs too often to
        # leave one unasked, and a fee question on the side is answered where it is asked.
        said = normalize(text)
        if not (eager or any(word in said for word in self.routing.change_words)):
            return False
        reading = self._understand(run, self._after_change_word(said) or text)
        if reading is None or reading.confidence < self.routing.threshold:
            return False
        if reading.label == conv.category or self._entry(reading.label) is None:
            return False
        in_topic = conv.category in self.content.policies.topics
        run.turn.events.append(Event("topic_changed", {"from": conv.category, "to": reading.label}))
        kept = {} if in_topic else dict(conv.facts)
        self._leave(run)
        self._say(run, self.shared.texts.topic_changed, category=self._entry(reading.label).name)
        if reading.label in self.content.categories:
            run.conversation.facts = kept
            return self._start(run, reading.label, text, keep_facts=True) or True
        self._start(run, reading.label, text)
        return True


def _without_words(text: str, words: list[str]) -> str:
    """The text with each of these words blanked out (courtesies, greetings)."""
    for word in words:
        text = text.replace(word, " ")
    return text
