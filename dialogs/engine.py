"""The dialog engine: one state machine per category, driving any conversation one message at a time.

Each message is read as a whole first: what it answers, what it asks, what it wants done (a person,
to stop, a fee, a case's progress). Then the conversation patterns (dialogs/repairs.py) and the
category's flow act on it, so every category gets the same repairs: side questions are answered and
the complaint resumes, cancelling is confirmed, a person is always reachable, no question traps.

Pure code: it reads the content, changes the Conversation it is given and returns a Turn.
It does no I/O; the time, new case numbers and case look-ups come from the caller's Ledger.

The Engine is one object in parts, each a module of its own: routing.py (what a message outside a
complaint starts), answers.py (what it answers inside one), fee_talk.py (fees and policies), moves.py
(the repair moves every flow shares), prompts.py (what is asked and how it is said); turn.py holds
the turn in progress. This module builds the machines and runs a turn through them."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from transitions import Machine

from dialogs.answers import AnswersMixin
from dialogs.content import Content
from dialogs.conversation import AFTER, CLARIFY, MENU, REASON, TOPIC, Conversation, Event, Inbound, Ledger, Reply, Turn
from dialogs.entities import extract
from dialogs.fee_talk import FeeTalkMixin
from dialogs.fees import FeeDesk
from dialogs.hours import Day
from dialogs.matching import meant_numbers, normalize, pick_by_words, pick_option
from dialogs.moves import MovesMixin
from dialogs.prompts import PromptsMixin
from dialogs.render import render, template_values
from dialogs.repairs import RepairReader
from dialogs.routing import RoutingMixin
from dialogs.schema import Category, State, Step
from dialogs.turn import CASE_NUMBER, MAX_MOVES, MEANINGFUL, OTHER, QUESTION, START, VAGUE, Router, Run

__all__ = ["CASE_NUMBER", "Engine", "Router"]  # CASE_NUMBER: the adapters find case numbers with it

READ_LIMIT = 4096  # characters of a message the engine reads: Telegram's longest message
META_REST = 6  # characters beside the words about the bot that make a request of their own


# Facts a new complaint right after a case takes from it (said so, and replaced by a new waybill).
SAME_GOODS = ("waybill", "phone")


class Engine(RoutingMixin, FeeTalkMixin, AnswersMixin, MovesMixin, PromptsMixin):
    """Runs conversations over the loaded content; build once, share across all conversations.

    Without a router, customers choose from the menu by number or name; with one, free text is
    understood too (see dialogs/intents.py)."""

    def __init__(self, content: Content, router: Router | None = None):
        self.content = content
        self.router = router
        self.shared = content.shared
        self.routing = content.shared.routing
        # Clauses end at punctuation, at a joining word (而且, 还有) and at an aside (货滞留三天了 对了我想问下…):
        # each may be a complaint of its own.
        self._clauses = re.compile("|".join([r"[,.;!?，。；！？、]"] + [re.escape(w) for w in sorted(
            {*self.routing.joiners, *self.routing.asides}, key=len, reverse=True)]))
        # The same, and a space between Chinese words, where a chat typed without punctuation ends a clause
        # (我发的货第二天才装车 耽误我事了): for the story's parts; reading a part alone loses what the rest says.
        self._chat_clauses = re.compile(rf"{self._clauses.pattern}|(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
        self.zone = ZoneInfo(self.shared.timezone)
        self._commands = {
            normalize(word).casefold(): move
            for move, words in self.shared.commands.model_dump().items()
            for word in words
        }
        self.repairs = RepairReader(self.shared.repairs)
        self.machines = {cid: self._build_machine(c) for cid, c in content.categories.items()}
        places = tuple(dict.fromkeys([*self.routing.places, *(p for r in content.policies.storage.regions
                                                              for p in r.places + r.draft_places)]))
        self.places = places
        self.fees = FeeDesk(content.policies, places)

    def _build_machine(self, category: Category) -> Machine:
        states: list[dict[str, Any]] = [{"name": START}]
        transitions = [{"trigger": "begin", "source": START, "dest": category.flow.initial}]
        if category.flow.check is not None:  # a charge disputed at the fee desk, its answer already given
            transitions.append({"trigger": "check", "source": START, "dest": category.flow.check})
        for name, state in category.flow.states.items():
            states.append({"name": name, "on_enter": [self._entered]})
            if state.goto:
                transitions.append({"trigger": "next", "source": name, "dest": state.goto})
            for i, option in enumerate(state.options):
                transitions.append({"trigger": f"option{i}", "source": name, "dest": option.goto})
        # model=None: the machine is shared; each trigger names the conversation it acts on.
        return Machine(
            model=None, states=states, transitions=transitions, initial=START,
            auto_transitions=False, send_event=True,
        )

    def handle(self, conversation: Conversation, inbound: Inbound, ledger: Ledger) -> Turn:
        """Takes one customer message and returns the replies and events; updates the conversation."""
        if inbound.text is not None and len(inbound.text) > READ_LIMIT:
            # Read as far as a Telegram message goes: a longer one (a pasted document) is kept whole by the
            # store, but understanding it all would cost seconds a megabyte and say nothing more.
            inbound = replace(inbound, text=inbound.text[:READ_LIMIT])
        run = Run(conversation, Turn(), ledger)
        if not self._known(conversation):  # stored under content that has since changed
            run.turn.events.append(Event("conversation_reset", {"category": conversation.category, "state": conversation.state}))
            self._leave(run)
        if not conversation.greeted:
            conversation.greeted = True
            run.first_contact = True
            angry = inbound.text is not None and self.repairs.read(inbound.text).insult
            self._say(run, self.shared.texts.greeting_plain if angry else self.shared.texts.greeting)
            # "你好", "嗯", "？" as a first message ask nothing yet: the menu after the greeting
            first = inbound.text or ""
            if inbound.choice is None and (not normalize(first) or self._command(first) == "hello" or self.repairs.only("lead_in", first)
                                           or self.repairs.read(first).ack or not MEANINGFUL.search(first)):
                if angry:  # "😡😡😡": sorry first
                    self._say(run, self.shared.texts.apology)
                self._show_menu(run)
                return self._finish(run)
        if inbound.choice is not None:
            self._on_choice(run, inbound.choice)
        else:
            self._on_text(run, inbound.text or "")
        return self._finish(run)

    def _finish(self, run: Run) -> Turn:
        """Tidies what is said: one greeting, no opener twice in a row, no line repeated from the last turn."""
        replies = run.turn.replies
        for i in range(1, len(replies)):
            for opener in ("您好，", "好的，"):
                if replies[i - 1].text.startswith(opener[:2]) and replies[i].text.startswith(opener):
                    replies[i] = Reply(replies[i].text[len(opener):], replies[i].options)
        memory = run.conversation.memory
        asked = render(self.shared.texts.repeat_prefix.text, self._blank_values())
        told = render(self.shared.texts.repeat_told.text, self._blank_values()) if self.shared.texts.repeat_told else asked
        texts = self.shared.texts
        # the fee desk's answers are the rules; a complaint's are what staff will find out
        conv = run.conversation
        again = texts.answered_again if conv.state == TOPIC else texts.answered_again_complaint
        if again is not None and replies and replies[0].text in memory.last_lines \
                and not any(mark in replies[0].text for mark in "？?") and self.repairs.read(run.said).unanswered \
                and (conv.state == TOPIC or self._complaint_faq_said(run, replies[0].text)):
            # "我是问…几天到账", "我问你什么时候到！！！": the same answer asked for again because it did not help; not said again
            replies[0] = Reply(render(again.text, template_values("", what=replies[0].text)), replies[0].options)
            memory.last_lines = []  # the apology owns up to the repeat: what follows is not marked "again" too
        for i, reply in enumerate(replies):
            if reply.text in memory.last_lines:
                # a question or a request is asked again; an answer said again ("收费标准：…") is told again
                prefix = asked if any(mark in reply.text for mark in "？?") or reply.text.startswith("请") else told
                # "好的，情况描述已经记下了。请问…": what was noted is new, the question after it is what is asked again
                ack, mark, question = reply.text.partition("。") if reply.text.startswith("好的，") else ("", "", "")
                replies[i] = Reply(f"{ack}{mark}{prefix}{question}" if question else prefix + reply.text, reply.options)
        memory.last_lines = [r.text for r in replies]
        return run.turn

    def _complaint_faq_said(self, run: Run, text: str) -> bool:
        """Whether this is one of the complaint's own answers (预计什么时候到: staff will find out), not a fee rule."""
        category = self.content.categories.get(run.conversation.category or "")
        return category is not None and any(render(a.text, self._values(run)) == text for a in category.faq.values())

    def _known(self, conv: Conversation) -> bool:
        """Tells whether the conversation's category and state exist in the loaded content."""
        if conv.category is None:
            return conv.state in (MENU, CLARIFY, REASON, AFTER)
        if conv.category in self.content.policies.topics:
            return conv.state == TOPIC
        category = self.content.categories.get(conv.category)
        return category is not None and conv.state in category.flow.states

    def _on_text(self, run: Run, text: str) -> None:
        conv = run.conversation
        said = normalize(text)  # folded once: a long message is costly to fold
        if not said:
            self._say(run, self.shared.texts.empty_message)
            return self._prompt(run)
        run.said = text
        move = self._commands.get(said.casefold())
        if move is None:  # "人工 人工 人工", "菜单！菜单": a command said again and again is that command
            words = set(re.split(r"[\s,，.。!！]+", said.casefold().strip(" ,，.。!！")))
            move = self._commands.get(words.pop()) if len(words) == 1 else None
        if move is None and conv.category is None and conv.state != CLARIFY and "?" in said and not re.search(r"\w", said):
            move = "hello"  # "？？" with nothing asked: still here, what can I do for you (not "I cannot answer that")
        if move is None and conv.category is None and self.repairs.only("lead_in", said):
            move = "hello"  # "那个，我想问下…": the question is still to come
        wants = self.repairs.read(said)
        run.entities = extract(text, self.places, today=self._today(run))
        if run.entities.salutation:
            conv.salutation = run.entities.salutation
        if move == "human" or wants.human:
            if wants.insult or wants.upset:  # "…破公司 我要打12315": sorry first, then the person
                self._say(run, self.shared.texts.apology)
            if wants.meta and self.shared.texts.about_me_handoff is not None:  # "你们客服都是机器人吗 叫个活人来"
                self._say(run, self.shared.texts.about_me_handoff)
            return self._handoff(run, text)
        if conv.memory.confirming is not None:
            if self._confirmed(run, wants, text):
                return
        if move is not None:
            return self._global_move(run, move)
        if self._out_of_range(run, text):
            return
        asked = CASE_NUMBER.search(said)
        if asked:
            self._case_progress(run, f"KF-{asked.group(1)}-{asked.group(2)}")
            return self._prompt(run, resume=True)
        if conv.state == REASON and conv.case_number:  # why the customer rated a closed case low
            run.turn.events.append(Event("rating_reason", {"case": conv.case_number, "reason": text}))
            conv.state = MENU
            self._say(run, self.shared.texts.rate_reason_thanks)
            return self._after(run)
        if wants.meta:
            self._say(run, self.shared.texts.about_me)
            rest = self.repairs.rest(text, "meta")
            # read without the words about the bot: that reading (kept in run.understood) routes the rest below
            reading = self._understand(run, rest) if len(MEANINGFUL.findall(rest)) >= META_REST else None
            if reading is None or reading.label in (OTHER, VAGUE):  # "哈哈 那你叫什么名字 今天天气不错": nothing more
                return self._prompt(run, resume=True)
            # "哦 又是机器人 行吧 我货到了为什么不送": said what kefu is, then on with what else the message asks
        if wants.photos and self.shared.texts.photos_here is not None:  # "我拍了照片 怎么发给你们"
            self._say(run, self.shared.texts.photos_here)
            return self._prompt(run, resume=True)
        if wants.hours and self.shared.texts.hours is not None:  # "我不想说单号 就问问你们晚上几点下班"
            self._say(run, self.shared.texts.hours)
            return self._prompt(run, resume=True)
        if wants.insult or wants.upset:
            self._say(run, self.shared.texts.apology)
            if wants.insult_only:
                return self._prompt(run, resume=True)
        if conv.category is None:
            return self._from_menu(run, text, wants)
        if conv.category in self.content.policies.topics:
            return self._topic_text(run, text, wants)
        self._complaint_text(run, text, wants)

    def _on_choice(self, run: Run, value: str) -> None:
        """A pressed option counts only if it belongs to the question being asked now."""
        key, _, index_text = value.rpartition(":")
        options = self._current_options(run.conversation)
        if key != self._question_key(run.conversation) or not index_text.isdigit() or int(index_text) >= len(options):
            self._say(run, self.shared.texts.stale_choice)
            return self._prompt(run)
        if run.conversation.state == REASON:  # a menu button pressed: a choice, not the reason for a low rating
            run.conversation.state = MENU
        self._on_text(run, options[int(index_text)].label)

    def _command(self, text: str | None) -> str | None:
        return self._commands.get(normalize(text or "").casefold())

    def _global_move(self, run: Run, move: str) -> None:
        conv = run.conversation
        texts = self.shared.texts
        in_complaint = conv.category in self.content.categories
        if move == "help":
            self._say(run, texts.help)
            return self._prompt(run)
        if move == "hello":  # "在吗" mid-conversation: still here; a returning customer's "你好": greeted again
            if conv.memory.last_lines:
                run.lead = render(texts.still_here.text, self._blank_values())
                if conv.category is None:
                    return self._say_plain(run, run.lead, self._current_options(conv))
            else:
                self._say(run, texts.greeting)
            return self._prompt(run)
        if move == "status":
            if not in_complaint and any(c.status == "open" for c in run.ledger.my_cases()):
                return self._my_cases(run)  # "查询进度" right after a case: theirs, not a number asked for
            self._say(run, texts.status_ask)
            return self._prompt(run, resume=True) if in_complaint else None
        if move in ("bye", "cancel") and in_complaint and conv.state != START:
            return self._confirm(run, move)
        if move == "bye":
            self._leave(run)
            return self._goodbye(run)
        if move == "cancel" and conv.category is not None:
            run.turn.events.append(Event("conversation_cancelled", {"category": conv.category, "state": conv.state}))
            self._leave(run)
            self._say(run, texts.cancelled)
            return self._after(run)
        self._leave(run)
        self._show_menu(run)

    def _start(self, run: Run, category_id: str, text: str = "", keep_facts: bool = False, story: bool = True,
               begin: str = "begin", account: bool = False, same_goods: bool = False) -> None:
        conv = run.conversation
        conv.memory.misses = 0
        if category_id in self.content.policies.topics:
            conv.category, conv.state, conv.facts = category_id, TOPIC, self._amounts_priced(run)
            conv.memory.topic = category_id
            if self._offer_check(run, text):  # "代收货款被扣了20块 我代收的是3000": the standard, and a check
                return
            answer = self.fees.answer(text, run.entities, category_id, conv.facts, self._today(run), opening=True)
            self._remember_amounts(run, conv.facts)
            if answer.topic and answer.topic != category_id:
                conv.category = conv.memory.topic = answer.topic
            # chosen from the menu, or named alone (保管费): what the manual says; a storage figure given: the next asked
            if not answer.texts and not answer.problem and not (conv.category == "storage" and conv.facts):
                answer = self.fees.overview(conv.category)  # chosen from the menu: what the manual says
            return self._fee_reply(run, answer, text)
        carried = conv.offered_text if conv.offered_text and conv.offered_text != text else ""
        # A new complaint right after a case ("你们要赔我损失"): the same goods and customer, unless said otherwise
        # (not a second complaint of the first message that names other goods: "货三天没发，而且上次的理赔…"; nor the
        # same kind again: 货物滞留 after a stranded case is another shipment; nor after the menu was asked for)
        last = (run.ledger.find_case(conv.case_number)
                if conv.case_number and (run.after_case and story or same_goods) and not keep_facts else None)
        before = ({k: v for k, v in conv.facts.items() if k in SAME_GOODS}
                  if last is not None and last.category != category_id else {})
        previous = conv.facts.get("waybill") if not story else None  # the first complaint's, of the same message
        if previous and len(run.entities.waybills) > 1:
            # the message's other complaint told with its own waybill ("SH…30滞留三天没发，SH…31到了没人送"): that one
            run.entities = replace(run.entities, waybills=tuple(sorted(run.entities.waybills, key=lambda w: w == previous)))
        conv.category, conv.state = category_id, START
        conv.memory.checking = begin == "check"
        if not keep_facts:
            conv.facts = {}
            conv.case_number = None
            conv.memory.skipped = []
        handed_over = keep_facts and conv.memory.said  # from another category: what was said there still counts
        said_before = list(conv.memory.said) if handed_over else []
        # a second complaint's words are the first one's story (恁司机…态度足歹, then the carrying): they choose none
        # of its options (我要投诉司机态度 would open the first complaint again)
        conv.memory.said = said_before + [m for m in (carried, text) if m and story]
        if carried:  # a waybill sent before the complaint was named
            whole = f"{carried}\n{text}"
            found = extract(whole, self.places, today=self._today(run))
            corrected = self.repairs.has("correction", whole)  # "手机号是…78，不对不对，是…87": the one meant first
            run.entities = replace(found, phones=tuple(meant_numbers(whole, found.phones, corrected)),
                                   waybills=tuple(meant_numbers(whole, found.waybills, corrected)))
        # the disputed charge, or a story told to choose the problem, is the account
        # the story goes on from the message that led to the choice (才赔我300 … → 赔太少了啊)
        told = f"{carried}\n{text}" if carried and category_id in run.chose_among else text
        if not told and handed_over:  # 退货 handed to 发错货: the first message (买的是红色的 来的是蓝色的) is the account here too
            told = said_before[0]
        self._prefill(run, told if story else "", account=account or begin == "check")
        if not story and text:  # the second complaint of a message: whom that message named (送货那个司机态度还特别差)
            self._absorb(run, text, only_choices=True)
        kept = {k: v for k, v in before.items() if k in self._category(conv).facts and k not in conv.facts}
        conv.memory.carried = []
        if kept and self.shared.texts.facts_carried is not None:
            conv.facts.update(kept)
            conv.memory.carried = list(kept)
            run.lead = render(self.shared.texts.facts_carried.text, self._values(run))  # before the next question
        for message in said_before:  # "送货的不帮忙卸货" said in the carrying complaint names the driver here
            self._absorb(run, message)
        run.noted.clear()
        # asked in the first message (要我再付100块中转费 这合理吗), or told (多了一项叉车费: the charges checked,
        # not why prices differ): answered before the first question, each one asked ("…中转费该我出吗？给我外协电话")
        for asked in (self._faqs_asked(category_id, text) if text and begin == "begin" else []):
            if asked.replaces or QUESTION.search(normalize(text)):
                run.replaced = [*run.replaced, *asked.replaces]
                run.lead += render(asked.text, self._values(run))
        self._trigger(run, begin)

    def _today(self, run: Run) -> date:
        return run.ledger.now.astimezone(self.zone).date()

    def _trigger(self, run: Run, trigger: str) -> None:
        machine = self.machines[run.conversation.category]  # type: ignore[index]
        machine.events[trigger].trigger(run)
        self._settle(run)

    def _settle(self, run: Run) -> None:
        """Moves on until the conversation waits for the customer, ends or changes category."""
        for _ in range(MAX_MOVES):
            conv = run.conversation
            state = self._state(conv)
            if state.end:
                later, source = conv.later, conv.offered_text
                self._leave(run)
                if later is not None:  # the second complaint of the first message
                    conv.state, conv.offered, conv.offered_text = CLARIFY, [later], source
                    conv.memory.second = later
                    return self._say(run, self.shared.texts.also_now, options=self._current_options(conv),
                                     category=self._entry(later).name)
                return self._after(run)
            if state.switch_to:
                run.turn.events.append(Event("handed_over", {"from": conv.category, "to": state.switch_to}))
                self._start(run, state.switch_to, keep_facts=True)
                return
            if state.options:
                index = self._chosen_before(conv, state)
                if index is None:
                    return self._prompt(run)
                self.machines[conv.category].events[f"option{index}"].trigger(run)  # type: ignore[index]
                continue
            if self._pending_fact(conv) is not None:
                return self._prompt(run)
            self.machines[conv.category].events["next"].trigger(run)  # type: ignore[index]
        raise RuntimeError(f"conversation did not settle after {MAX_MOVES} moves")

    def _chosen_before(self, conv: Conversation, state: State) -> int | None:
        """An option the customer's earlier words already chose (已经申请过了 → the first), if exactly one.
        Only words of two characters or more count: "急" in a first message is no answer yet."""
        for message in conv.memory.said:
            index = self._pick_state_option(message, state, numbers=False, shortest=2)
            if index is not None:
                return index
        return None

    def _pick_state_option(self, text: str, state: State, numbers: bool = True, shortest: int = 1) -> int | None:
        if numbers:
            index = pick_option(text, [[o.label] for o in state.options])
            if index is not None:
                return index
        return pick_by_words(text, [[w for w in (*o.words, *(o.reply_words if numbers else ())) if len(w) >= shortest]
                                    for o in state.options])

    def _entered(self, event) -> None:
        """Records what a state says and does on entry."""
        run: Run = event.model
        category = self._category(run.conversation)
        state = category.flow.states[event.state.name]
        for point in state.say:
            if point not in run.replaced:
                self._say(run, category.answer_points[point])
        if state.open_case:
            self._open_case(run, category)
        if state.end:
            run.turn.events.append(Event("conversation_closed", {"category": category.id, "case": run.conversation.case_number}))
            self._say(run, category.closing)

    def _open_case(self, run: Run, category: Category, announce: bool = True) -> tuple[str, Step, datetime]:
        conv = run.conversation
        step = category.handling[0]
        deadline = self.deadline(run.ledger.now, step)
        conv.case_number = run.ledger.number_case(category.id)
        facts = {k: v for k, v in conv.facts.items()}
        run.turn.events.append(Event("case_opened", {
            "number": conv.case_number, "category": category.id, "facts": facts,
            "step": 0, "role": step.role, "deadline": deadline, "skipped": list(conv.memory.skipped),
        }))
        if announce:
            self._say(run, self.shared.texts.case_opened, step={
                "role": self._role_name(step.role),
                "action": render(step.action.text, self._values(run)),
                "deadline": self.local_time(deadline),
            })
        return conv.case_number, step, deadline

    def deadline(self, start: datetime, step: Step) -> datetime:
        """When a step is due: its hours counted in the business hours of the role that acts."""
        return Day.of(self.shared.business_hours, step.role, self.zone).add(start, step.deadline_hours)

    def local_time(self, moment: datetime) -> str:
        """A moment as customers and staff read it: local time, e.g. 11月27日 18:00."""
        return moment.astimezone(self.zone).strftime("%m月%d日 %H:%M")

    def _leave(self, run: Run) -> None:
        conv = run.conversation
        conv.category, conv.state, conv.later, conv.offered, conv.offered_text = None, MENU, None, [], ""
        conv.memory.misses, conv.memory.confirming, conv.memory.said, conv.memory.checking = 0, None, [], False
