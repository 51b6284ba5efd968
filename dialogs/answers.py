"""Inside a complaint: what a message answers, whatever is asked (every fact it gives is taken), what it
adds to the story, what it corrects, and what happens when it answers nothing (the way out, never a trap).

A part of the Engine (dialogs/engine.py), kept apart by what it does; pure like the rest of the engine."""

from __future__ import annotations

import re

from dialogs.conversation import Conversation
from dialogs.entities import extract
from dialogs.matching import check_fact, is_number, listed_numbers, meant_numbers, normalize, pick_by_words, pick_option
from dialogs.render import render, template_values
from dialogs.repairs import Wants
from dialogs.schema import Answer
from dialogs.turn import (ANSWER_STORY, FOREIGN, asks, MAX_SAID, MEANINGFUL, NAMING_NUMBERS, QUESTION, SHIPMENT, SHORT_ASK, SHORT_STORY, SHORT_STORY_WORDS,
                          STORY_LENGTH, WORDS, Run)


# A question that names both answers ("要不要收费？", "需不需要"): not a choice among the options by its words.
EITHER_OR = re.compile(r"(\w)不\1|需不需要|可不可以")

# a time said as a promise that was not kept ("说今天送 没送来", "说好上午到 结果也没到")
BROKEN_PROMISE = re.compile(r"说(?:好)?[^，。,.!！?？]{0,8}?(?:送|到|来|发)[^，。,.!！?？]{0,6}?(?:没|不见|也没|还没)")


class AnswersMixin:
    """Takes what a message gives inside a complaint, and finds the way on when it gives nothing."""

    def _complaint_text(self, run: Run, text: str, wants: Wants) -> None:
        conv, texts = run.conversation, self.shared.texts
        memory = conv.memory
        memory.said = (memory.said + [text])[-MAX_SAID:]
        pending = self._pending_fact(conv)
        # "不对 我是想问保价": a change of topic said outright is not an answer to take facts from
        said = normalize(text)
        # "算了 我自己去拿" ends the complaint; "算了不退了，改成查一下货到哪了" asks for another one instead
        if (not wants.bye and any(word in said for word in self.routing.change_words)
                and (not wants.cancel or any(word in said for word in self.routing.instead_words))
                and self._change_topic(run, text)):
            return
        if self.repairs.has("resume", text) and not run.entities.waybills and not run.entities.phones:
            return self._prompt(run, resume=True)  # "好 回到刚才那个" after a side question: where we were
        self._absorb(run, text, overwrite=wants.correction, pending=pending)
        state = self._state(conv)
        if run.declined and wants.cannot_give and not run.noted:  # "我不想给电话" while asked another thing: that is all
            run.lead = self._moved_on(run, run.declined)
            return self._prompt(run)
        if wants.correction and not run.noted and self._corrects_last(run, text):
            return self._prompt(run)
        if pending is not None:
            value = conv.facts.get(pending) or self._direct_answer(run, pending, text)
            if value is not None:
                self._answer_asked(run, text)
                if (self._fact_type(conv, pending).kind == "pattern" and not QUESTION.search(said)
                        and len(WORDS.findall(self._without_entities(run, text))) >= ANSWER_STORY):
                    # "SH20261520，货值五千只赔了八百" at the waybill question: the rest is the account's too
                    self._adds_to_story(run, text, False, least=0)
                return self._take(run, pending, value)
        elif state.options and not (EITHER_OR.search(text) and pick_option(text, [[o.label] for o in state.options]) is None):
            # "要不要收费？" asks about the options rather than choosing one: answered as a side question below
            index = self._pick_state_option(text, state)
            if index is not None:
                self._answer_asked(run, text)
                memory.misses = 0
                collects = self._category(conv).flow.states[state.options[index].goto].collect
                self._tell_story(run, text, [w for o in state.options for w in (o.label, *o.words, *o.reply_words)], collects)
                return self._trigger(run, f"option{index}")
        given = run.entities.waybills or run.entities.phones  # "算了 SH20261111": given up explaining, not the complaint
        if (wants.cancel and not given) or wants.bye:
            return self._confirm(run, "cancel" if wants.cancel else "bye")
        if wants.wait:
            return self._say(run, texts.wait_reply)
        fact = self._fact(conv, pending) if pending is not None else None
        if wants.ack and fact is not None and fact.ack_answer:  # 请拍下… 好的: will do, noted as such
            return self._take(run, pending, fact.ack_answer)
        if wants.thanks:  # thanks are answered; 嗯 / 好 only heard: the question again, no 不客气
            if not wants.ack:
                run.lead = render(texts.thanks_reply.text, self._blank_values())
            return self._prompt(run)
        if wants.own_status:
            self._my_cases(run, quiet_menu=True)
            return self._prompt(run, resume=True)
        if pending is not None and wants.cannot_give and self._fact_type(conv, pending).kind != "text":
            if self._cannot_give_other(conv, pending, text):  # "我说了单号没了" while the phone is asked
                run.lead = self._moved_on(run, [])
                return self._prompt(run)
            return self._skip(run, pending, text)
        if self._side_question(run, text, wants, pending):
            return
        if pending is not None and self._fact_type(conv, pending).kind == "text":
            if any(word in normalize(text) for word in self.routing.change_words) and self._change_topic(run, text):
                return
            return self._text_answer(run, pending, text, wants)
        if pending is not None and wants.cannot_give:
            return self._skip(run, pending, text)
        if run.noted:  # the message gave something else that was asked later (a phone for the waybill)
            if pending is None and self._state(conv).options:
                given = self._option_given(run)
                if given is not None:  # the waybill at 需要登记核对吗？: yes, check this one
                    return self._trigger(run, f"option{given}")
                return self._missed(run, None, noted=True)  # the choice asked is still not made
            return self._prompt(run)
        if self._change_topic(run, text):
            return
        if wants.protest:
            if self._adds_to_story(run, text):
                return self._prompt(run)
            found = self._look_back(run, pending)
            if found is not None:
                return found()
        if pending is not None and wants.cannot_give:
            return self._skip(run, pending, text)
        # ("福州到上海 一个立方收我380 别家才260": figures of the story are story too; a waybill or phone is no story)
        # a waybill other than the one taken comes with its own story (2. SH…02 混进了别家的货): the account's, too;
        # the one taken, sent again alone (typed plainly this time), is had
        taken, sent = conv.facts.get("waybill"), set(run.entities.waybills)
        other_waybill, sent_again = bool(taken and sent and taken not in sent), bool(taken and sent == {taken})
        if ((pending is not None or self._state(conv).options) and not ((run.entities.waybills and not other_waybill) or run.entities.phones)
                and not re.search(r"[A-Za-z]", self._without_entities(run, text))
                and not QUESTION.search(text) and self._adds_to_story(run, text, False, least=SHORT_STORY_WORDS)):
            # "两箱瓷砖碎了" at the phone question, or at 您希望怎么处理: the story, kept, and the question again
            return self._prompt(run)
        if self.fees.tells_insurance(text) and self._adds_to_story(run, text, False, least=1):
            return self._prompt(run)  # "保价了 保了3000" at the phone question: a fact of the account, not a phone
        if texts.foreign is not None and FOREIGN.fullmatch(text):  # "I cannot read Chinese": no wrong number either
            self._say(run, texts.foreign)
            return self._prompt(run)
        # at a choice, "那你让我怎么办" is lost, not a question for staff: the way out (_missed) serves it
        asked_at = (self._fact_type(conv, pending).kind == "pattern" if pending is not None
                    else bool(self._state(conv).options) and not self.repairs.has("confused", text))
        if (asked_at and texts.question_noted is not None and asks(normalize(text)) and not re.search(r"[0-9]", normalize(text))):
            # "现在怎么办 客户在漳州等着" at the phone question, "能不能反映给你们线路负责人" at a choice: a question
            # nothing here answers, no wrong number and no "reply with the option's number"
            self._keep_unanswered(run)
            run.lead += render(texts.question_noted.text, self._blank_values())
            return self._prompt(run)
        if sent_again and not run.entities.phones:
            run.noted.append(self._category(conv).facts["waybill"].label)
            return self._prompt(run)
        self._missed(run, pending)

    def _keep_unanswered(self, run: Run) -> None:
        """What the customer said to a question kefu could not place ("六楼 没电梯", "上次500这次800"), kept on
        the account of what happened, so the person handed the case reads it."""
        conv = run.conversation
        facts = self._category(conv).facts
        story = next((fid for fid, fact in facts.items() if fact.describes), "request")
        kept = conv.facts.get(story, "")
        told = [m.strip() for m in conv.memory.said[1:] if len(WORDS.findall(m)) >= 2 and m.strip() not in kept]
        if told:
            conv.facts[story] = "；".join([kept, *told] if kept else told)

    def _option_given(self, run: Run) -> int | None:
        """The one option taken by the facts this message gave instead of a choice (its `given`), if any."""
        category = self._category(run.conversation)
        noted = {fid for fid, fact in category.facts.items() if fact.label in run.noted}
        chosen = [i for i, option in enumerate(self._state(run.conversation).options) if noted & set(option.given)]
        return chosen[0] if len(chosen) == 1 else None

    def _adds_to_story(self, run: Run, text: str, wants_protest: bool = True, least: int = ANSWER_STORY) -> bool:
        """"我刚说了啊，泉州的货跑漳州去了": what the message tells is added to the account of what happened
        (for a protest, once the protest itself is taken out)."""
        conv = run.conversation
        rest = normalize(text).casefold()
        for phrase in self.repairs.lists["protest"] if wants_protest else ():
            rest = rest.replace(phrase, "")
        if len(WORDS.findall(rest)) < least:
            return False
        # The account this complaint keeps: given already, or asked in this state (while a choice between
        # branches is open, the branch's own account is not known yet).
        collect = self._state(conv).collect
        story = [fid for fid, fact in self._category(conv).facts.items()
                 if fact.describes and (fid in conv.facts or fid in collect)]
        for fact_id in story:
            conv.facts[fact_id] = f"{conv.facts[fact_id]}；{text.strip()}" if fact_id in conv.facts else text.strip()
            run.noted.append(self._category(conv).facts[fact_id].label)
        return bool(story)

    def _corrects_last(self, run: Run, text: str) -> bool:
        """"哦不对，是六楼，我记错了": the free-text answer given last is replaced (a waybill, a phone or a
        choice said in other words are corrected where they are taken)."""
        conv = run.conversation
        last = conv.memory.last_fact
        fact = self._fact(conv, last) if last else None
        if fact is None or self.shared.fact_types[fact.type].kind != "text" or len(WORDS.findall(text)) < 3:
            return False
        conv.facts[last] = text.strip()  # type: ignore[index]
        run.noted.append(fact.label)
        return True

    def _direct_answer(self, run: Run, fact_id: str, text: str) -> str | None:
        """The value a message gives for the fact asked, when it is a choice or a pattern fact."""
        conv = run.conversation
        fact_type = self._fact_type(conv, fact_id)
        fact = self._fact(conv, fact_id)
        if fact_type.kind == "choice":
            index = pick_option(text, [[o] for o in fact.options or []]) if fact else None
            if index is None and fact is not None:
                index = pick_by_words(text, self._option_words(fact))
            return fact.options[index] if index is not None and fact else None  # type: ignore[index]
        if fact_type.kind == "pattern":
            value = check_fact(text, fact_type, None)
            if value is not None and fact_type.entity == "waybills" and value in run.entities.phones:
                return None  # a mobile number typed when the waybill was asked: taken as the phone
            if value is None and fact_type.entity is not None:  # "运单号是 SH123456，麻烦快点"
                value = next(filter(None, (check_fact(v, fact_type, None) for v in getattr(run.entities, fact_type.entity))), None)
            return value
        return None

    def _tell_story(self, run: Run, text: str, words: list[str], only: list[str] | None = None) -> None:
        """An answer given in words that also tells what happened (发到别的地方了，本来到漳州的) fills the
        account; what only names the answer (words: the options and what customers say for them) does not."""
        rest = normalize(text)
        for word in sorted(words, key=len, reverse=True):
            rest = rest.replace(normalize(word), "")
        # "SH…01 应该到南京 结果到了合肥": the option's words and two cities, where the goods went, are a story too
        if len(WORDS.findall(rest)) < ANSWER_STORY - 2 and len(run.entities.cities) < 2:
            return
        conv = run.conversation
        for fact_id, fact in self._category(conv).facts.items():
            if fact.describes and fact_id not in conv.facts and (only is None or fact_id in only):
                conv.facts[fact_id] = text.strip()

    def _take(self, run: Run, fact_id: str, value: str) -> None:
        conv = run.conversation
        conv.memory.last_fact = fact_id
        fact = self._fact(conv, fact_id)
        if fact is not None and fact.options and value in fact.options:
            self._tell_story(run, run.said, [w for words in self._option_words(fact) for w in words])
        conv.facts[fact_id] = value
        conv.memory.misses = 0
        self._settle(run)

    def _text_answer(self, run: Run, fact_id: str, text: str, wants: Wants) -> None:
        """A free-text answer: kept unless it is clearly something else (a protest, a lone phone number)."""
        conv = run.conversation
        if wants.protest:
            if self._adds_to_story(run, text):
                return self._prompt(run)
            rest = normalize(text)
            for phrase in self.repairs.lists["protest"]:
                rest = rest.replace(phrase, "")
            if len(WORDS.findall(rest)) < 4:  # nothing but the protest: look back at what was said
                return self._look_back(run, fact_id)()
        own = self._fact_type(conv, fact_id).entity
        if run.noted and self._pending_fact(conv) is None:  # the waybill a stand-in was asked for: nothing left here
            return self._settle(run)
        if run.noted and own is not None and not getattr(run.entities, own):
            return self._prompt(run)  # it gave something else (the corrected address), not a time for this question
        if run.noted and len(MEANINGFUL.findall(self._without_entities(run, text))) < 4:
            fact = self._fact(conv, fact_id)
            if fact is None:  # asked what stands in for a missing waybill, given a phone: let be
                conv.memory.skipped.append(fact_id)
                return self._settle(run)
            told = conv.memory.said[0] if conv.memory.said else ""
            if fact.describes and told != text and len(WORDS.findall(told)) >= SHORT_STORY_WORDS:
                conv.facts[fact_id] = told.strip()  # asked what happened, given a number: what the first message told
                return self._settle(run)
            return self._prompt(run)  # only a phone or a waybill: noted, and the question stands
        if wants.cannot_give:
            named = [i for i in self._category(conv).facts if i != fact_id
                     and self.repairs.cannot_give(text, self._fact_type(conv, i).called)]
            if named and not self.repairs.cannot_give(text, self._fact_type(conv, fact_id).called):
                run.lead = self._moved_on(run, named)  # "不方便留电话" while the address is asked: not the address
                return self._prompt(run)
            return self._skip(run, fact_id, text)
        if self.repairs.lost(text):  # "那你让我怎么办" when asked what stands in for a waybill: not that, and on we go
            return self._skip(run, fact_id, text)
        texts = self.shared.texts
        if own is not None and not getattr(run.entities, own) and texts.question_noted is not None and asks(normalize(text)):
            # "你们能不能直接在这里告诉我结果" at the time question: a question kept for staff, not the time
            self._keep_unanswered(run)
            run.lead += render(texts.question_noted.text, self._blank_values())
            return self._prompt(run)
        if run.entities.salutation and len(MEANINGFUL.findall(text)) <= 6 and not (own and getattr(run.entities, own)):
            return self._prompt(run)  # "我姓林" at the address question: who is speaking (kept), no address
        fact_type = self._fact_type(conv, fact_id)
        other = self._answers_other_choice(run, fact_id, text)
        if other is not None:  # "送货司机" when asked what happened: the answer to the question before
            conv.facts[other[0]] = other[1]
            run.noted.append(self._category(conv).facts[other[0]].label)
            return self._prompt(run)
        value = check_fact(text, fact_type, None)
        found = getattr(run.entities, fact_type.entity) if fact_type.entity else ()
        if found and len(MEANINGFUL.findall(text)) > 30:
            value = found[0]  # a long message: the address (or time) it gives, not the whole of it
        fact = self._fact(conv, fact_id)
        if fact is not None and fact.describes and len(MEANINGFUL.findall(text)) < 4:
            value = None  # "司机啊": an answer to another question, not an account of what happened
        if value is None:
            return self._missed(run, fact_id)
        self._answer_asked(run, text)  # "6楼 没电梯 … 能退点运费吗": the answer, and its question answered
        self._take(run, fact_id, value)

    def _answers_other_choice(self, run: Run, fact_id: str, text: str) -> tuple[str, str] | None:
        """A short answer that is one of another choice fact's options, not an account of anything."""
        if len(WORDS.findall(text)) >= ANSWER_STORY:
            return None
        for other_id, fact in self._category(run.conversation).facts.items():
            if other_id != fact_id and fact.options:
                index = pick_option(text, [[o] for o in fact.options])
                if index is not None and not is_number(text):
                    return other_id, fact.options[index]
        return None

    def _answer_asked(self, run: Run, text: str) -> None:
        """A question asked beside the answer given ("SH… 退回福州 运费谁出", "SH… 对了 代收3000块手续费多少"):
        answered before the next question."""
        if not asks(normalize(text)):
            return
        answer = self._faq_asked(run.conversation.category, text)
        if answer is not None:
            self._say(run, answer)
        elif self.fees.is_question(text, run.entities):
            self._side_fee(run, text)

    def _faq_asked(self, category_id: str | None, text: str) -> Answer | None:
        """The answer of a complaint's FAQ that the message asks for (its longest cue said), or None."""
        hits = self._faq_hits(category_id, text)
        return max(hits, key=lambda h: (h[0], h[1]))[3] if hits else None

    def _faqs_asked(self, category_id: str, text: str) -> list[Answer]:
        """Every answer of a complaint's FAQ the message asks for, in the order asked."""
        return [h[3] for h in sorted(self._faq_hits(category_id, text), key=lambda h: h[2])]

    def _faq_hits(self, category_id: str | None, text: str) -> list[tuple[int, str, int, Answer]]:
        """The FAQ answers whose cues the message says: (its longest cue's length, its id, where it is first
        asked, the answer), in the FAQ's order."""
        category = self.content.categories.get(category_id or "")
        said = normalize(text).casefold()
        hits = []
        for fid, answer in (category.faq.items() if category else []):
            cues = [c for c in answer.cues if normalize(c).casefold() in said]
            if cues:
                hits.append((max(len(c) for c in cues), fid, min(said.find(normalize(c).casefold()) for c in cues), answer))
        return hits

    def _help_asked(self, conv: Conversation, pending: str | None, text: str) -> Answer | None:
        """The help a message asks for: the asked fact's (its cues), or another of the complaint's facts' when the
        message also names that fact (为什么要我电话 while the address is asked); None if none."""
        said = normalize(text)
        types = [self._fact_type(conv, pending)] if pending is not None else []
        named = [t for t in (self._fact_type(conv, f) for f in self._category(conv).facts)
                 if t not in types and any(normalize(w) in said for w in t.called)]
        return next((t.help for t in types + named
                     if t.help is not None and any(normalize(c) in said for c in t.help.cues)), None)

    def _side_question(self, run: Run, text: str, wants: Wants, pending: str | None) -> bool:
        """Answers a question that is not the one asked (a fee, this complaint's FAQ, another complaint),
        then the complaint resumes where it stood."""
        conv, texts = run.conversation, self.shared.texts
        asks = bool(QUESTION.search(normalize(text)))
        help = self._help_asked(conv, pending, text)
        if help is not None:  # "什么是单号"; "为什么要我电话" while the address is asked
            conv.memory.misses = max(conv.memory.misses, 1)  # not answered yet: the way out is offered
            self._say(run, help, options=self._current_options(conv))
            return True
        text_pending = pending is not None and self._fact_type(conv, pending).kind == "text"
        if self.fees.is_question(text, run.entities) and asks and self._side_fee(run, text):
            self._prompt(run, resume=True)
            return True
        # "保价怎么收" answered on the side, then "一万": a figure for that fee, not a waybill.
        if (conv.memory.topic is not None and pending is not None and self._fact_type(conv, pending).kind == "pattern"
                and not run.entities.waybills and not run.entities.phones and len(MEANINGFUL.findall(text)) <= 8
                and any(m.isdigit() or m in "一二两三四五六七八九十百千万" for m in text)
                and self._side_fee(run, text)):
            self._prompt(run, resume=True)
            return True
        answer = self._faq_asked(conv.category, text)
        # "我就想问个价" asks without a question word; "我付过搬楼费了" tells what its answer is said instead of
        if answer is not None and (asks or len(MEANINGFUL.findall(text)) <= SHORT_ASK or answer.replaces):
            # a longer message at a question of words is the account, which may ask in passing (多久了都没人管)
            if not (text_pending and len(MEANINGFUL.findall(text)) > SHORT_ASK):
                self._say(run, answer)
                self._prompt(run, resume=True)
                return True
        if text_pending:
            return False
        reading = self._understand(run, text)
        if reading is None:
            return False
        related = [conv.category, *self.routing.covers.get(conv.category, [])]  # type: ignore[list-item]
        about_this = reading.label in related or dict(reading.candidates).get(conv.category, 0) >= 0.05
        # Another complaint read as surely as a clause must be ("司机把我货摔坏了" at 请提供运单号), whatever is asked: a story
        # of this one told at a number question ("货是25号发的 一共15件 发成都的") is no second complaint.
        also = self.routing.also_threshold
        other_complaint = (reading.label in self.content.categories and reading.label not in related
                           and reading.confidence >= also)
        if conv.category in self._about_whom(text, only=True):  # "是送货的司机": this complaint's person, named again
            self._prompt(run)
            return True
        # A story told while something else is asked, and no other complaint: more about this one.
        if (about_this or (not asks and not other_complaint)) and self._adds_to_story(run, text, wants_protest=False):
            self._prompt(run)  # more about the same complaint: added to the account of it
            return True
        if reading.label == conv.category or reading.label not in self.content.categories:
            return False
        if (reading.label not in related and reading.confidence >= also
                and len(MEANINGFUL.findall(NAMING_NUMBERS.sub("", self._without_entities(run, text)))) >= 6
                and not wants.correction
                and not self.repairs.has("correction", text)):
            if conv.later is None:
                conv.later = reading.label
            self._say(run, texts.also_noted, category=self._entry(reading.label).name)
            self._prompt(run, resume=True)
            return True
        return False

    def _absorb(self, run: Run, text: str, overwrite: bool = False, pending: str | None = None,
                only_choices: bool = False) -> None:
        """Takes every fact the message gives (a waybill, a phone, an address, a choice said in words),
        not only the one asked for; a correction (电话说错了) replaces what was given before.
        only_choices: the choices said, nothing else (another complaint's story names who it was about)."""
        conv = run.conversation
        category = self._category(conv)
        for fact_id, fact in category.facts.items():
            fact_type = self.shared.fact_types[fact.type]
            if only_choices and fact_type.kind != "choice":
                continue
            # "单号是32132132" when another was given: naming the fact with a new value corrects it
            named = fact_type.kind == "pattern" and normalize(fact.label)[-2:] in normalize(text)
            carried = fact_id in conv.memory.carried  # from the case before: another waybill replaces it
            # a correction replaces a number or a choice; the account is not replaced by a clause ("是不是算错了")
            if (fact_id in conv.facts and not ((overwrite and not fact.describes) or named or carried)
                    and not self._generic(conv.facts[fact_id])):
                continue  # given already; "不清楚" is not an answer, and a later message may give one
            if fact_id == pending and fact_type.kind != "pattern":
                continue  # the answer to the question asked is read whole (below): its words, or its option
            value = None
            if fact_type.entity is not None:
                found_all = getattr(run.entities, fact_type.entity)
                if fact_type.entity == "times":  # "约好上午送…明天上午在家": the fuller time says more
                    # "说今天送 没送来": a promise broken, not when the customer can receive the goods
                    found_all = [] if BROKEN_PROMISE.search(normalize(text)) else sorted(found_all, key=len, reverse=True)
                elif len(found_all) > 1 and fact_type.entity in ("phones", "waybills"):
                    # "SH20261111 哦不对 是SH20261117": the one said after; "是…34不是…43": not the one denied
                    found_all = meant_numbers(text, found_all, overwrite or self.repairs.has("correction", text))
                elif overwrite and len(found_all) > 1:
                    found_all = list(reversed(found_all))
                for found in found_all:
                    value = check_fact(found, fact_type, fact.options)
                    if value is not None:
                        break
                if fact_type.entity == "waybills" and not overwrite and conv.later is None and listed_numbers(text, found_all):
                    # "这周有三票货还没到：1. SH…34 2. SH…35 3. SH…36": one complaint about them all, every one on its case
                    value = "、".join(v for v in (check_fact(f, fact_type, None) for f in found_all) if v) or value
            elif fact_type.kind == "choice" and text:
                # Not asked yet: only what customers say for an option, and none of the words that say
                # yes, no or "I don't know" ("没有" or "不记得" alone would answer every choice at once).
                words = [[w for w in (o, *fact.option_words.get(o, [])) if not self._generic(w)] for o in fact.options or []]
                index = pick_by_words(text, words)
                value = fact.options[index] if index is not None else None  # type: ignore[index]
            elif fact.clues and text:  # "照片都拍了": the clause that speaks of it
                value = next((c.strip() for c in self._chat_clauses.split(text)
                              if any(normalize(w) in normalize(c) for w in fact.clues)
                              # an account says more than its clue ("少件了" alone is asked about)
                              and not (fact.describes and len(WORDS.findall(c)) < SHORT_STORY_WORDS)), None)
            if value is not None and value != conv.facts.get(fact_id):
                conv.facts[fact_id] = value
                if carried:
                    conv.memory.carried.remove(fact_id)
                if fact_id in conv.memory.skipped:
                    conv.memory.skipped.remove(fact_id)
                if fact_id != pending:
                    run.noted.append(fact.label)
            # "单号我找不到了", "SH… 手机号不想给": not asked for, the way out taken at once
            if (value is None and fact_type.called and fact_id not in conv.facts and fact_id not in conv.memory.skipped
                    and fact_id != pending and self.repairs.cannot_give(text, fact_type.called)):
                conv.memory.skipped.append(fact_id)
                run.declined.append(fact_id)
        for fact_id in conv.memory.skipped:  # no waybill: who sent it and the route identify the goods
            instead = self._fact_type(conv, fact_id).instead
            if (instead is not None and instead.id != pending and instead.id not in conv.facts and text
                    and SHIPMENT.search(normalize(text))):
                conv.facts[instead.id] = text.strip()
                run.noted.append(instead.label)

    def _prefill(self, run: Run, text: str = "", account: bool = False) -> None:
        """Takes the facts a category needs from what the customer already wrote, and the first
        message as their account of what happened when it tells a story (or is the account: a dispute)."""
        conv = run.conversation
        self._absorb(run, text)
        run.noted.clear()  # taken from the first message: nothing to announce
        story = normalize(text)
        length, clauses = len(WORDS.findall(story)), len([c for c in self._chat_clauses.split(story) if c.strip()])
        if account or length >= STORY_LENGTH or (length >= SHORT_STORY and clauses >= 3):
            for fact_id, fact in self._category(conv).facts.items():
                # the whole story, also over the one clause of it that its clues took (货丢了一整票)
                if fact.describes and (fact_id not in conv.facts or conv.facts[fact_id] in text):
                    conv.facts[fact_id] = text.strip()

    def _look_back(self, run: Run, fact_id: str | None):
        """For "我刚说了": finds the answer in the customer's earlier messages; returns the move to make."""
        conv = run.conversation
        earlier = conv.memory.said[:-1]
        if fact_id is None:
            state = self._state(conv)
            for message in earlier:
                index = self._pick_state_option(message, state, numbers=False)
                if index is not None:
                    return lambda: self._trigger(run, f"option{index}")
        else:
            fact = self._fact(conv, fact_id)
            fact_type = self._fact_type(conv, fact_id)
            for message in earlier:
                found = extract(message, self.places, today=self._today(run))
                value = None
                if fact_type.entity is not None:
                    value = next(filter(None, (check_fact(v, fact_type, None) for v in getattr(found, fact_type.entity))), None)
                elif fact_type.kind == "choice" and fact is not None:
                    index = pick_by_words(message, self._option_words(fact))
                    value = fact.options[index] if index is not None else None  # type: ignore[index]
                elif fact is not None and fact.describes and len(MEANINGFUL.findall(message)) >= STORY_LENGTH:
                    value = message.strip()
                if value is not None:
                    return lambda: self._take(run, fact_id, value)
        # not found: counted as a miss that offers the way out, so the buttons the line points at are there
        pattern = fact_id is not None and self._fact_type(conv, fact_id).kind == "pattern"
        conv.memory.misses = max(conv.memory.misses, 1 if pattern else 2)
        self._say(run, self.shared.texts.look_back_failed, options=self._current_options(conv))
        return lambda: None

    def _skip(self, run: Run, fact_id: str, text: str) -> None:
        """The customer cannot give this fact: ask what identifies the same thing instead, or leave it for staff."""
        conv = run.conversation
        conv.memory.skipped.append(fact_id)
        conv.memory.misses = 0
        instead = self._fact_type(conv, fact_id).instead
        if instead is not None and any(normalize(w) in normalize(text) for w in instead.nothing_words):
            conv.memory.skipped.append(instead.id)  # "无单号 我只是打电话问价钱": no shipment to tell of either
            instead = None
        if instead is not None and len(MEANINGFUL.findall(text)) >= STORY_LENGTH and not self.repairs.read(text).cancel:
            conv.facts[instead.id] = text.strip()  # "没有单号，发货人叫张三，从泉州发到南京的"
        elif instead is None:
            run.lead = self._moved_on(run, [fact_id])
        self._settle(run)

    def _missed(self, run: Run, fact_id: str | None, noted: bool = False) -> None:
        """An answer kefu cannot use: the first time the question's own help, then another wording with
        a way out (skip it, or a person), then kefu moves on and leaves it for staff."""
        conv = run.conversation
        memory = conv.memory
        memory.misses += 1
        if fact_id is None:  # a choice between the state's options, which cannot be left out
            options = self._state(conv).options
            other = next((i for i, o in enumerate(options) if "其他" in o.label), None)
            if memory.misses >= 3 and other is not None:  # "其他原因": kefu moves on, staff will ask
                memory.misses = 0
                run.lead = render(self.shared.texts.moved_on.text, self._blank_values())
                return self._trigger(run, f"option{other}")
            if memory.misses >= 3:  # a person was offered the last time: hand over rather than ask a fourth time
                self._keep_unanswered(run)
                return self._handoff(run, "")
            if noted:
                return self._prompt(run)
            again = self.shared.fact_types["choice"].invalid_again
            text = self.shared.texts.choose_again if memory.misses == 1 or again is None else again
            return self._say(run, text, options=self._current_options(conv))
        fact_type = self._fact_type(conv, fact_id)
        if memory.misses >= 3:
            memory.skipped.append(fact_id)
            memory.misses = 0
            run.lead = self._moved_on(run, [fact_id])
            return self._settle(run)
        # a number tried: nothing but digits and letters ("1234"), or five digits in a row among words ("25号发的
        # 一共15件" tries no waybill)
        said = normalize(run.said)
        attempted = fact_type.kind != "pattern" or bool(re.fullmatch(r"[\s0-9A-Za-z()+\-]+", said)
                                                        or re.search(r"[A-Za-z]|[0-9]{5}", said))
        names_it = any(normalize(c) in said for c in fact_type.called)
        if not attempted and not names_it and memory.misses == 1 and self.shared.texts.words_noted is not None:
            # "福州到南昌的" at the phone question: what the customer said is kept for staff, the question asked again
            self._keep_unanswered(run)
            broken = self.shared.texts.promise_broken if BROKEN_PROMISE.search(said) else None  # 说今天送 没送来: sorry first
            run.lead += render((broken or self.shared.texts.words_noted).text, self._blank_values())
            return self._prompt(run)
        if not attempted and fact_type.wordless is not None:  # "老号码": not a wrong number, no number at all
            return self._say(run, fact_type.wordless, options=self._current_options(conv))
        if (memory.misses == 2 or not attempted) and fact_type.invalid_again is not None:
            return self._say(run, fact_type.invalid_again, options=self._current_options(conv))
        if fact_type.kind == "choice":
            return self._say(run, self.shared.texts.choose_again, options=self._current_options(conv))
        self._say(run, fact_type.invalid, options=self._current_options(conv))

    def _moved_on(self, run: Run, fact_ids: list[str]) -> str:
        """"没关系，联系电话可以先不提供…": what is left for staff, named (the question asked may be another one)."""
        labels = [f.label for f in (self._fact(run.conversation, i) for i in fact_ids) if f is not None]
        return render(self.shared.texts.moved_on.text, template_values("", what="、".join(dict.fromkeys(labels))))

    def _cannot_give_other(self, conv: Conversation, pending: str, text: str) -> bool:
        """Whether "…没了" names another thing than the one asked for (单号, while the phone is asked)."""
        asked = self._fact_type(conv, pending)
        others = [t for t in self.shared.fact_types.values() if t is not asked and t.called]
        return (not self.repairs.cannot_give(text, asked.called)
                and any(self.repairs.cannot_give(text, t.called) for t in others))

    def _generic(self, word: str) -> bool:
        lists = self.repairs.lists
        said = normalize(word).casefold()
        return len(said) < 2 or any(said in lists[name] for name in ("cannot_give", "affirm", "deny", "thanks", "acknowledge", "cancel"))

    def _only_entities(self, run: Run, text: str) -> bool:
        found = run.entities
        rest = NAMING_NUMBERS.sub("", self._without_entities(run, text))
        # "货破了 SH…", "my package SH… is damaged" (routing.glosses) tell a problem
        return bool(found.waybills or found.phones) and len(WORDS.findall(rest)) < 2 and self._glossed(text) == text

    def _entity_labels(self, run: Run) -> list[str]:
        labels = self.content.handoff.facts
        return [labels[k].label for k, v in (("waybill", run.entities.waybills), ("phone", run.entities.phones)) if v and k in labels]

    def _without_entities(self, run: Run, text: str) -> str:
        rest = normalize(text)
        for found in (*run.entities.phones, *run.entities.waybills):
            rest = rest.replace(found, "")
        return re.sub(r"[\d\s\-()+]", "", rest)
