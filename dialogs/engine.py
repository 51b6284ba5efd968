"""The dialog engine: one state machine per category, driving any conversation one message at a time.

Each message is read as a whole first: what it answers, what it asks, what it wants done (a person,
to stop, a fee, a case's progress). Then the conversation patterns (dialogs/repairs.py) and the
category's flow act on it, so every category gets the same repairs: side questions are answered and
the complaint resumes, cancelling is confirmed, a person is always reachable, no question traps.

Pure code: it reads the content, changes the Conversation it is given and returns a Turn.
It does no I/O; the time, new case numbers and case look-ups come from the caller's Ledger."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from transitions import Machine

from dialogs.content import Content
from dialogs.conversation import (AFTER, CLARIFY, MENU, REASON, TOPIC, CaseView, Conversation, Event, Inbound, Ledger,
                                  Option, Reply, Turn)
from dialogs.entities import Entities, extract
from dialogs.fees import FeeAnswer, FeeDesk
from dialogs.policies import topic_text
from dialogs.hours import Day
from dialogs.matching import check_fact, is_number, normalize, option_number, pick_by_words, pick_option
from dialogs.render import Facts, render, template_values
from dialogs.repairs import RepairReader, Wants
from dialogs.schema import Category, Fact, FactType, State, Step, Text

OTHER = "other"  # the router's label for messages that are none of kefu's topics
VAGUE = "vague"  # the router's label for a complaint that names no category ("投诉")
START = "start"  # every machine's entry: 'begin' leads from here to the flow's initial state
CONFIRM = "confirm"  # the question key of "sure?" (cancel or goodbye with a complaint open)
MAX_MOVES = 50  # a guard: the validator already rejects loops that never wait for the customer
MAX_SAID = 12  # messages of one complaint kept to look back at ("我刚说了")
# A message counts as the customer's account of what happened with this many characters (or
# STORY_LENGTH with three clauses): "我要投诉你们员工，态度很差" names the complaint, it tells nothing.
STORY_LENGTH, SHORT_STORY = 16, 12
ANSWER_STORY = 8  # an answer given in words (摔坏了，三箱碎了两箱) that also tells what happened
_SHIPMENT = re.compile(r"发货人|收货人|寄件人|收件人|发货的是|从.{1,8}(?:发|寄|运)|发到|发往|寄到|运到|哪天发|号发的|发的货")
# A case number anywhere in a message is a request for that case's progress: KF-20261127-0001, KF20261127 0001.
CASE_NUMBER = re.compile(r"KF[-\s]?(\d{8})[-\s]?(\d{4,6})(?!\d)", re.IGNORECASE)
_QUESTION = re.compile(r"[?？吗么呢]|多少|怎么|怎样|如何|哪|几|什么|谁|能不能|可不可以|是否|有没有|要不要|行不行")
_MEANINGFUL = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")
_WORDS = re.compile(r"[\u4e00-\u9fff]")  # what a story is told in (a waybill's digits tell nothing)


class _Run:
    """What a machine is triggered on: one conversation during one turn."""

    def __init__(self, conversation: Conversation, turn: Turn, ledger: Ledger):
        self.conversation = conversation
        self.turn = turn
        self.ledger = ledger
        self.first_contact = False
        self.entities = Entities()  # what the message mentions: waybill, phone, amounts, how to address
        self.understood: Any = None  # the router's reading of the message, once asked
        self.noted: list[str] = []  # facts taken from this message besides the one asked for
        self.said = ""  # the message of this turn
        self.lead: str = ""  # said before the next question, in the same line (不客气。 好的，我们接着…)

    @property
    def state(self) -> str:
        return self.conversation.state

    @state.setter
    def state(self, value: str) -> None:
        self.conversation.state = value


class Router(Protocol):
    def classify(self, text: str) -> Any:
        """Returns an object with label, confidence and candidates ((label, confidence), best first)."""


class Engine:
    """Runs conversations over the loaded content; build once, share across all conversations.

    Without a router, customers choose from the menu by number or name; with one, free text is
    understood too (see dialogs/intents.py)."""

    def __init__(self, content: Content, router: Router | None = None):
        self.content = content
        self.router = router
        self.shared = content.shared
        self.routing = content.shared.routing
        # Clauses end at punctuation or at a joining word (而且, 还有): each may be a complaint of its own.
        self._clauses = re.compile("|".join([r"[,.;!?，。；！？、]"] + [re.escape(w) for w in self.routing.joiners]))
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

    # -- building ---------------------------------------------------------------------------

    def _build_machine(self, category: Category) -> Machine:
        states: list[dict[str, Any]] = [{"name": START}]
        transitions = [{"trigger": "begin", "source": START, "dest": category.flow.initial}]
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

    # -- one message ------------------------------------------------------------------------

    def handle(self, conversation: Conversation, inbound: Inbound, ledger: Ledger) -> Turn:
        """Takes one customer message and returns the replies and events; updates the conversation."""
        run = _Run(conversation, Turn(), ledger)
        if not self._known(conversation):  # stored under content that has since changed
            run.turn.events.append(Event("conversation_reset", {"category": conversation.category, "state": conversation.state}))
            self._leave(run)
        if not conversation.greeted:
            conversation.greeted = True
            run.first_contact = True
            angry = inbound.text is not None and self.repairs.read(inbound.text).insult
            self._say(run, self.shared.texts.greeting_plain if angry else self.shared.texts.greeting)
            if inbound.choice is None and (not normalize(inbound.text or "") or self._command(inbound.text) == "hello"):
                self._show_menu(run)
                return self._finish(run)
        if inbound.choice is not None:
            self._on_choice(run, inbound.choice)
        else:
            self._on_text(run, inbound.text or "")
        return self._finish(run)

    def _finish(self, run: _Run) -> Turn:
        """Tidies what is said: one greeting, no opener twice in a row, no line repeated from the last turn."""
        replies = run.turn.replies
        for i in range(1, len(replies)):
            for opener in ("您好，", "好的，"):
                if replies[i - 1].text.startswith(opener[:2]) and replies[i].text.startswith(opener):
                    replies[i] = Reply(replies[i].text[len(opener):], replies[i].options)
        memory = run.conversation.memory
        prefix = render(self.shared.texts.repeat_prefix.text, self._blank_values())
        for i, reply in enumerate(replies):
            if reply.text in memory.last_lines:
                replies[i] = Reply(prefix + reply.text, reply.options)
        memory.last_lines = [r.text for r in replies]
        return run.turn

    def _known(self, conv: Conversation) -> bool:
        """Tells whether the conversation's category and state exist in the loaded content."""
        if conv.category is None:
            return conv.state in (MENU, CLARIFY, REASON, AFTER)
        if conv.category in self.content.policies.topics:
            return conv.state == TOPIC
        category = self.content.categories.get(conv.category)
        return category is not None and conv.state in category.flow.states

    def _on_text(self, run: _Run, text: str) -> None:
        conv = run.conversation
        said = normalize(text)  # folded once: a long message is costly to fold
        if not said:
            self._say(run, self.shared.texts.empty_message)
            return self._prompt(run)
        run.said = text
        move = self._commands.get(said.casefold())
        wants = self.repairs.read(said)
        run.entities = extract(text, self.places, today=self._today(run))
        if run.entities.salutation:
            conv.salutation = run.entities.salutation
        if move == "human" or wants.human:
            return self._handoff(run, text)
        if conv.memory.confirming is not None:
            if self._confirmed(run, wants):
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
            return self._prompt(run, resume=True)
        if wants.insult:
            self._say(run, self.shared.texts.apology)
            if wants.insult_only:
                return self._prompt(run, resume=True)
        if conv.category is None:
            return self._from_menu(run, text, wants)
        if conv.category in self.content.policies.topics:
            return self._topic_text(run, text, wants)
        self._complaint_text(run, text, wants)

    # -- outside any complaint ----------------------------------------------------------------

    def _from_menu(self, run: _Run, text: str, wants: Wants) -> None:
        """Starts what a message outside any category asks for: an offered choice, a menu entry, or free text."""
        conv, texts = run.conversation, self.shared.texts
        if wants.cancel or (wants.thanks and conv.state != CLARIFY):
            if wants.thanks:
                self._say(run, texts.thanks_reply)
            return self._after(run)
        if wants.bye:
            self._leave(run)
            return self._goodbye(run)
        after_case = conv.state == AFTER
        if after_case:
            index = pick_option(text, [[label] for label in self._follow_up_labels()])
            conv.state = MENU
            if index is not None:
                return self._follow_up(run, index, text)
        if conv.state == CLARIFY:
            offered, source = conv.offered, conv.offered_text
            # The options shown are the offered ones, then back to the menu: a number counts against
            # that list, never against the main menu's numbers the customer cannot see now.
            index = pick_option(text, [self._names(label) for label in offered] + [[self.shared.back_label]])
            if index is None and is_number(text):
                self._say(run, self.shared.texts.choose_again)
                return self._prompt(run)
            if index is None and self._only_entities(run, text):  # a waybill while asked which problem: kept
                conv.offered_text = f"{source}\n{text}"
                run.noted = self._entity_labels(run)
                return self._prompt(run)
            conv.state, conv.offered, conv.offered_text = MENU, [], ""
            if index == len(offered):
                return self._show_menu(run)
            if index is not None:
                # The waybill or phone in the message that led to the offer is not asked again; a second
                # complaint's story is the first one's, so only its facts carry over.
                run.entities = extract(f"{source}\n{text}", self.places, today=self._today(run))
                second, conv.memory.second = conv.memory.second == offered[index], None
                return self._start(run, offered[index], source, story=not second)
        index = pick_option(text, [names for names, _ in self._menu_entries()])
        if index is not None:  # a number or a menu entry's name is a choice, not a story to take facts from
            names = self._menu_entries()[index][0]
            said = normalize(text).casefold()
            told = "" if is_number(text) or any(normalize(n).casefold() == said for n in names) else text
            return self._start(run, self._menu_entries()[index][1], told)
        if is_number(text):  # a number no option has
            self._say(run, texts.choose_again)
            return self._show_menu(run, with_prompt=False)
        if wants.own_status and not run.entities.waybills:
            return self._my_cases(run)
        if self._corrects_case(run, text, wants):
            return
        status_words = self.shared.commands.status
        if (run.entities.waybills and "tracking" in self.content.categories
                and (wants.own_status or any(said.startswith(w) for w in status_words for said in [normalize(text)]))):
            self._say(run, texts.status_by_waybill)
            return self._start(run, "tracking", text)
        if self._only_entities(run, text):  # a waybill or a phone alone: kept for the complaint that follows
            conv.offered_text = f"{conv.offered_text}\n{text}".strip()
            run.noted = self._entity_labels(run)
            return self._prompt(run)
        if self.fees.is_question(text, run.entities):
            aside = any(word in normalize(text) for word in self.routing.asides)
            # figures for a fee ("运费300，第4天，福州") are a fee question, unless a complaint is set apart
            complaint = self._complaint_in(run, text) if aside or not (run.entities.money or run.entities.nth_days) else None
            if complaint is None:
                return self._start(run, self.fees.topic_of(text, run.entities) or "cod", text)
            if _QUESTION.search(normalize(text)):  # a complaint that also asks a fee: the fee first, then the complaint
                self._side_fee(run, text)
            run.understood = complaint
        if after_case and self._already_recorded(run, text):
            return
        self._route(run, text)

    def _already_recorded(self, run: _Run, text: str) -> bool:
        """More about the case just opened (碎了, right after the claim): said to be on the case, not a new complaint."""
        conv = run.conversation
        case = run.ledger.find_case(conv.case_number) if conv.case_number else None
        reading = self._understand(run, text) if case is not None else None
        if case is None or case.status != "open" or reading is None or reading.confidence < self.routing.threshold:
            return False
        if reading.label not in [case.category, *self.routing.covers.get(case.category, [])]:
            return False
        self._say(run, self.shared.texts.already_recorded, case={"number": case.number})
        self._after(run, ask=False)
        return True

    def _follow_up(self, run: _Run, index: int, text: str) -> None:
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

    def _route(self, run: _Run, text: str) -> None:
        """Acts on the router's reading: start the category, answer off-topic, or ask which one was meant."""
        conv, texts = run.conversation, self.shared.texts
        reading = self._understand(run, text)
        if reading is None:
            if not run.first_contact:  # a first "你好" just gets the menu after the greeting
                self._say(run, texts.fallback)
            return self._show_menu(run)
        if reading.confidence >= self.routing.threshold:
            if reading.label == OTHER:
                if not run.first_contact:
                    self._say(run, self.content.other.reply)
                return self._show_menu(run)
            if reading.label == VAGUE:
                self._say(run, self.content.other.vague_reply)
                return self._show_menu(run, with_prompt=False)
            label = reading.label
            later, sure, first = self._second_complaint(run, text, label)
            # the goods first, when the whole message leaves room for them (a clause alone misreads easily)
            weight = dict(reading.candidates).get(later, 0)
            if later in self.routing.prefer.get(label, []) and (weight >= 0.05 or (sure >= 0.9 and first)):
                label, later = later, label  # the goods before the manners: the material problem first
            if later in self.routing.covers.get(label, []):
                later = None  # the damage a claim is about is the claim, not a second complaint
            if later is not None:
                self._say(run, texts.also_mentioned, category=self._entry(later).name)
            # Before starting: a first complaint whose facts are all in the message ends at once.
            # The message is kept so the second complaint takes its facts from it too.
            conv.later = later
            conv.offered_text = f"{conv.offered_text}\n{text}".strip() if later else conv.offered_text
            return self._start(run, label, text)
        clauses = sorted(self._clause_complaints(text), key=lambda c: -dict(reading.candidates).get(c, 0))
        if clauses:  # unsure of the whole, sure of its parts: "货压了五天没发，而且开单的态度还很差"
            label = clauses[0]
            later = next((c for c in clauses[1:] if c != label), None)
            if later in self.routing.prefer.get(label, []):
                label, later = later, label
            if later in self.routing.covers.get(label, []):
                later = None
            if later is not None:
                self._say(run, texts.also_mentioned, category=self._entry(later).name)
            conv.later = later
            conv.offered_text = f"{conv.offered_text}\n{text}".strip() if later else conv.offered_text
            return self._start(run, label, text)
        offered = [label for label, _ in reading.candidates if self._entry(label) is not None]
        if not offered or self.repairs.read(text).insult:  # abuse with nothing clear in it: asked, not guessed
            self._say(run, texts.fallback)
            return self._show_menu(run)
        conv.state, conv.offered, conv.offered_text = CLARIFY, offered, text
        self._prompt(run)

    def _complaint_beside_handoff(self, run: _Run, text: str) -> Any:
        """The complaint a request for a person also makes ("运费乱收，多收了一百多，我要投诉到12315"):
        read without the request itself, and only when clearly a complaint."""
        if self._command(text) or self.router is None:
            return None
        rest = self.repairs.without_requests(text)
        if len(_WORDS.findall(rest)) < 6:
            return None
        reading = self.router.classify(rest)
        sure = reading.label in self.content.categories and reading.confidence >= self.routing.also_threshold
        return reading if sure else None

    def _clause_complaints(self, text: str) -> list[str]:
        """The complaints the clauses of a message are confidently read as, in order (none for one clause)."""
        parts = [c for c in self._clauses.split(normalize(text)) if len(_WORDS.findall(c)) >= 4]
        clauses = [c for c in parts if not self.repairs.read(c).insult]
        if self.router is None or not clauses or (len(clauses) < 2 and len(parts) < 2):
            return []  # one clause is the whole message, already read (abuse set aside, one may do)
        found = []
        for clause in clauses[:12]:
            reading = self.router.classify(clause)
            if reading.label in self.content.categories and reading.confidence >= self.routing.also_threshold:
                found.append(reading.label)
        return list(dict.fromkeys(found))

    def _complaint_in(self, run: _Run, text: str) -> Any:
        """The router's confident reading of a complaint in the message or in one of its clauses
        (货三天没发了…另外问一下代收5000手续费多少: the stranded goods), or None."""
        reading = self._understand(run, text)
        if reading is None:
            return None
        if reading.label in self.content.categories and reading.confidence >= self.routing.threshold:
            return reading
        if not any(word in normalize(text) for word in self.routing.asides):
            return None  # "货放仓库一个星期了，运费800，保管费多少": the story of the fee question, no complaint
        for clause in [c for c in self._clauses.split(normalize(text)) if len(_WORDS.findall(c)) >= 4][:12]:
            other = self.router.classify(clause)  # type: ignore[union-attr]
            if other.label in self.content.categories and other.confidence >= self.routing.also_threshold:
                return other
        return None

    def _second_complaint(self, run: _Run, text: str, label: str) -> tuple[str | None, float, bool]:
        """Names a second complaint in the same message ("货摔坏了，司机态度还很差"): a clause that the
        router confidently reads as another complaint category; with how sure it is, and whether that
        clause is the message's first (the problem named first)."""
        if label not in self.content.categories or self.router is None:
            return None, 0.0, False
        clauses = [c for c in self._clauses.split(normalize(text))
                   if len(_MEANINGFUL.findall(c)) >= 4 and not self.repairs.read(c).insult][:12]  # abuse names no complaint
        for i, clause in enumerate(clauses):
            other = self.router.classify(clause)
            if (other.label in self.content.categories and other.label != label
                    and other.confidence >= self.routing.also_threshold):
                return other.label, other.confidence, i == 0
        return None, 0.0, False

    def _understand(self, run: _Run, text: str) -> Any:
        if self.router is None:
            return None
        if run.understood is None:
            # Abuse and calls for a person say nothing about the problem: read without them.
            plain = self.repairs.without_requests(text) if self.repairs.read(text).insult else text
            run.understood = self.router.classify(plain if _WORDS.search(plain) else text)
        return run.understood

    # -- a fee or policy topic ------------------------------------------------------------------

    def _topic_text(self, run: _Run, text: str, wants: Wants) -> None:
        conv, texts = run.conversation, self.shared.texts
        if wants.cancel or wants.thanks:
            self._leave(run)
            self._say(run, texts.thanks_reply)
            return self._after(run)
        if wants.bye:
            self._leave(run)
            return self._goodbye(run)
        if pick_option(text, [[self.shared.back_label]]) is not None and normalize(text) in ("1", self.shared.back_label):
            return self._global_move(run, "menu")
        chosen = self.fees.by_title(conv.category, text)  # a button of the answers' titles
        if chosen is not None:
            self._say_plain(run, chosen)
            return self._prompt(run)
        if self._offer_check(run, text):
            return
        answer = self.fees.answer(text, run.entities, conv.category, conv.facts, self._today(run))
        if answer.understood:
            if answer.topic and answer.topic != conv.category:  # the figures so far stay: "加起来一共多少"
                conv.category = conv.memory.topic = answer.topic
            return self._fee_reply(run, answer)
        if self._change_topic(run, text, eager=True):
            return
        if answer.options:
            self._say(run, texts.topic_which, options=self._options(conv, answer.options),
                      category=self._entry(conv.category).name)
            return
        self._say(run, texts.fallback)
        self._prompt(run)

    def _fee_reply(self, run: _Run, answer: FeeAnswer) -> None:
        conv, texts = run.conversation, self.shared.texts
        if answer.problem is not None:
            self._say(run, texts.amount_not_positive if answer.problem == "not_positive" else texts.amount_too_large)
            return self._prompt(run)
        for line in answer.texts:
            self._say_plain(run, line)
        if answer.invites:  # the topic's overview ends with its own invitation to send figures
            return self._say_plain(run, run.turn.replies.pop().text, self._current_options(conv))
        if answer.options and answer.texts:  # storage lines to choose from, on the question just asked
            last = run.turn.replies.pop()
            return self._say_plain(run, last.text, self._options(conv, answer.options + [self.shared.back_label]))
        if answer.options:
            asked = self.fees.prompt(conv.category, conv.facts)
            if asked is not None:  # the storage line is asked for
                return self._say_plain(run, asked, self._options(conv, answer.options + [self.shared.back_label]))
            return self._say(run, texts.topic_which, options=self._options(conv, answer.options),
                             category=self._entry(conv.category).name)
        self._prompt(run)

    def _offer_check(self, run: _Run, text: str) -> bool:
        """The customer says they were charged more than the standard: the standard, and a check offered."""
        answer = self.fees.charged_check(text, run.entities)
        if answer is None or "pricing" not in self.content.categories:
            return False
        for line in answer.texts:
            self._say_plain(run, line)
        conv = run.conversation
        self._leave(run)
        conv.state, conv.offered, conv.offered_text = CLARIFY, ["pricing"], text
        self._prompt(run)
        return True

    # -- inside a complaint ------------------------------------------------------------------

    def _complaint_text(self, run: _Run, text: str, wants: Wants) -> None:
        conv, texts = run.conversation, self.shared.texts
        memory = conv.memory
        memory.said = (memory.said + [text])[-MAX_SAID:]
        pending = self._pending_fact(conv)
        self._absorb(run, text, overwrite=wants.correction, pending=pending)
        state = self._state(conv)
        if wants.correction and not run.noted and self._corrects_last(run, text):
            return self._prompt(run)
        if pending is not None:
            value = conv.facts.get(pending) or self._direct_answer(run, pending, text)
            if value is not None:
                return self._take(run, pending, value)
        elif state.options:
            index = self._pick_state_option(text, state)
            if index is not None:
                memory.misses = 0
                collects = self._category(conv).flow.states[state.options[index].goto].collect
                self._tell_story(run, text, [w for o in state.options for w in (o.label, *o.words)], collects)
                return self._trigger(run, f"option{index}")
        if wants.cancel or wants.bye:
            return self._confirm(run, "cancel" if wants.cancel else "bye")
        if wants.wait:
            return self._say(run, texts.wait_reply)
        if wants.thanks:
            run.lead = render(texts.thanks_reply.text, self._blank_values())
            return self._prompt(run)
        if wants.own_status:
            self._my_cases(run, quiet_menu=True)
            return self._prompt(run, resume=True)
        if pending is not None and wants.cannot_give and self._fact_type(conv, pending).kind != "text":
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
        self._missed(run, pending)

    def _adds_to_story(self, run: _Run, text: str, wants_protest: bool = True) -> bool:
        """"我刚说了啊，泉州的货跑漳州去了": what the message tells is added to the account of what happened
        (for a protest, once the protest itself is taken out)."""
        conv = run.conversation
        rest = normalize(text).casefold()
        for phrase in self.repairs.lists["protest"] if wants_protest else ():
            rest = rest.replace(phrase, "")
        if len(_WORDS.findall(rest)) < ANSWER_STORY:
            return False
        story = [fid for fid, fact in self._category(conv).facts.items() if fact.describes]
        for fact_id in story:
            conv.facts[fact_id] = f"{conv.facts[fact_id]}；{text.strip()}" if fact_id in conv.facts else text.strip()
            run.noted.append(self._category(conv).facts[fact_id].label)
        return bool(story)

    def _corrects_last(self, run: _Run, text: str) -> bool:
        """"哦不对，是六楼，我记错了": the free-text answer given last is replaced (a waybill, a phone or a
        choice said in other words are corrected where they are taken)."""
        conv = run.conversation
        last = conv.memory.last_fact
        fact = self._fact(conv, last) if last else None
        if fact is None or self.shared.fact_types[fact.type].kind != "text" or len(_WORDS.findall(text)) < 3:
            return False
        conv.facts[last] = text.strip()  # type: ignore[index]
        run.noted.append(fact.label)
        return True

    def _direct_answer(self, run: _Run, fact_id: str, text: str) -> str | None:
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

    def _tell_story(self, run: _Run, text: str, words: list[str], only: list[str] | None = None) -> None:
        """An answer given in words that also tells what happened (发到别的地方了，本来到漳州的) fills the
        account; what only names the answer (words: the options and what customers say for them) does not."""
        rest = normalize(text)
        for word in sorted(words, key=len, reverse=True):
            rest = rest.replace(normalize(word), "")
        if len(_WORDS.findall(rest)) < ANSWER_STORY - 2:
            return
        conv = run.conversation
        for fact_id, fact in self._category(conv).facts.items():
            if fact.describes and fact_id not in conv.facts and (only is None or fact_id in only):
                conv.facts[fact_id] = text.strip()

    def _take(self, run: _Run, fact_id: str, value: str) -> None:
        conv = run.conversation
        conv.memory.last_fact = fact_id
        fact = self._fact(conv, fact_id)
        if fact is not None and fact.options and value in fact.options:
            self._tell_story(run, run.said, [w for words in self._option_words(fact) for w in words])
        conv.facts[fact_id] = value
        conv.memory.misses = 0
        self._settle(run)

    def _text_answer(self, run: _Run, fact_id: str, text: str, wants: Wants) -> None:
        """A free-text answer: kept unless it is clearly something else (a protest, a lone phone number)."""
        conv = run.conversation
        if wants.protest:
            if self._adds_to_story(run, text):
                return self._prompt(run)
            rest = normalize(text)
            for phrase in self.repairs.lists["protest"]:
                rest = rest.replace(phrase, "")
            if len(_WORDS.findall(rest)) < 4:  # nothing but the protest: look back at what was said
                return self._look_back(run, fact_id)()
        if run.noted and len(_MEANINGFUL.findall(self._without_entities(run, text))) < 4:
            return self._prompt(run)  # only a phone or a waybill: noted, and the question stands
        if wants.cannot_give:
            return self._skip(run, fact_id, text)
        fact_type = self._fact_type(conv, fact_id)
        other = self._answers_other_choice(run, fact_id, text)
        if other is not None:  # "送货司机" when asked what happened: the answer to the question before
            conv.facts[other[0]] = other[1]
            run.noted.append(self._category(conv).facts[other[0]].label)
            return self._prompt(run)
        value = check_fact(text, fact_type, None)
        found = getattr(run.entities, fact_type.entity) if fact_type.entity else ()
        if found and len(_MEANINGFUL.findall(text)) > 30:
            value = found[0]  # a long message: the address (or time) it gives, not the whole of it
        fact = self._fact(conv, fact_id)
        if fact is not None and fact.describes and len(_MEANINGFUL.findall(text)) < 4:
            value = None  # "司机啊": an answer to another question, not an account of what happened
        if value is None:
            return self._missed(run, fact_id)
        self._take(run, fact_id, value)

    def _answers_other_choice(self, run: _Run, fact_id: str, text: str) -> tuple[str, str] | None:
        """A short answer that is one of another choice fact's options, not an account of anything."""
        if len(_WORDS.findall(text)) >= ANSWER_STORY:
            return None
        for other_id, fact in self._category(run.conversation).facts.items():
            if other_id != fact_id and fact.options:
                index = pick_option(text, [[o] for o in fact.options])
                if index is not None and not is_number(text):
                    return other_id, fact.options[index]
        return None

    def _side_question(self, run: _Run, text: str, wants: Wants, pending: str | None) -> bool:
        """Answers a question that is not the one asked (a fee, this complaint's FAQ, another complaint),
        then the complaint resumes where it stood."""
        conv, texts = run.conversation, self.shared.texts
        asks = bool(_QUESTION.search(normalize(text)))
        text_pending = pending is not None and self._fact_type(conv, pending).kind == "text"
        if self.fees.is_question(text, run.entities) and asks and self._side_fee(run, text):
            self._prompt(run, resume=True)
            return True
        category = self._category(conv)
        if asks:
            said = normalize(text).casefold()
            hits = [(max(len(c) for c in a.cues if normalize(c).casefold() in said), fid)
                    for fid, a in category.faq.items() if any(normalize(c).casefold() in said for c in a.cues)]
            if hits:
                self._say(run, category.faq[max(hits)[1]])
                self._prompt(run, resume=True)
                return True
        if text_pending:
            return False
        reading = self._understand(run, text)
        if reading is None:
            return False
        related = [conv.category, *self.routing.covers.get(conv.category, [])]  # type: ignore[list-item]
        about_this = reading.label in related or dict(reading.candidates).get(conv.category, 0) >= 0.05
        other_complaint = (reading.label in self.content.categories and reading.label not in related
                           and reading.confidence >= self.routing.also_threshold)
        # A story told while something else is asked, and no other complaint: more about this one.
        if (about_this or (not asks and not other_complaint)) and self._adds_to_story(run, text, wants_protest=False):
            self._prompt(run)  # more about the same complaint: added to the account of it
            return True
        if reading.label == conv.category or reading.label not in self.content.categories:
            return False
        if (reading.label not in related and reading.confidence >= self.routing.also_threshold
                and len(_MEANINGFUL.findall(text)) >= 6 and not wants.correction
                and not self.repairs.has("correction", text)):
            if conv.later is None:
                conv.later = reading.label
            self._say(run, texts.also_noted, category=self._entry(reading.label).name)
            self._prompt(run, resume=True)
            return True
        return False

    def _side_fee(self, run: _Run, text: str) -> bool:
        """Answers a fee question asked on the side of a complaint; the storage quote needs its figures in one go."""
        conv, texts = run.conversation, self.shared.texts
        answer = self.fees.answer(text, run.entities, conv.memory.topic, {}, self._today(run), opening=True)
        if not answer.understood and not answer.options:
            return False
        conv.memory.topic = answer.topic
        for line in answer.texts:
            self._say_plain(run, line)
        if answer.problem:
            self._say(run, texts.amount_too_large if answer.problem == "too_large" else texts.amount_not_positive)
        elif answer.topic == "storage" and not answer.texts:
            self._say_plain(run, topic_text("storage", self.content.policies.storage.ask, self.content.policies)
                            if self.content.policies.storage.ask else "")
        return True

    def _change_topic(self, run: _Run, text: str, eager: bool = False) -> bool:
        """Leaves the current category for another when the message clearly asks for it (不对，其实是…),
        keeping every fact already given. eager: a fee topic holds nothing to lose, any clear reading moves."""
        conv = run.conversation
        said_so = eager or any(word in normalize(text) for word in self.routing.change_words)
        reading = self._understand(run, text)
        if reading is None or reading.confidence < self.routing.threshold:
            return False
        if not said_so and len(_WORDS.findall(text)) < 6:
            return False  # "要查": too short to leave a complaint for, whatever the router thinks
        if not said_so and dict(reading.candidates).get(conv.category, 0) >= 0.01:
            return False  # the message may well be about this complaint: it is not left unasked
        if reading.label == conv.category or self._entry(reading.label) is None:
            return False
        if not said_so and (reading.confidence < self.routing.switch_threshold or conv.category in self.content.categories):
            return False  # a complaint is left only when the customer says so (不对，其实是…): the router errs
        if not said_so and conv.category in self.content.categories and reading.label not in self.content.categories:
            return False  # a fee or policy question mid-complaint is a side question, answered when it asks
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

    def _absorb(self, run: _Run, text: str, overwrite: bool = False, pending: str | None = None) -> None:
        """Takes every fact the message gives (a waybill, a phone, an address, a choice said in words),
        not only the one asked for; a correction (电话说错了) replaces what was given before."""
        conv = run.conversation
        category = self._category(conv)
        for fact_id, fact in category.facts.items():
            if fact_id in conv.facts and not overwrite and not self._generic(conv.facts[fact_id]):
                continue  # given already; "不清楚" is not an answer, and a later message may give one
            fact_type = self.shared.fact_types[fact.type]
            if fact_id == pending and fact_type.kind == "text":
                continue  # the answer to the question asked: taken whole, in the customer's words (below)
            value = None
            if fact_type.entity is not None:
                for found in getattr(run.entities, fact_type.entity):
                    value = check_fact(found, fact_type, fact.options)
                    if value is not None:
                        break
            elif fact_type.kind == "choice" and text:
                # Not asked yet: only what customers say for an option, and none of the words that say
                # yes, no or "I don't know" ("没有" or "不记得" alone would answer every choice at once).
                words = [[w for w in (o, *fact.option_words.get(o, [])) if not self._generic(w)] for o in fact.options or []]
                index = pick_by_words(text, words)
                value = fact.options[index] if index is not None else None  # type: ignore[index]
            elif fact.clues and text:  # "照片都拍了": the clause that speaks of it
                value = next((c.strip() for c in self._clauses.split(text)
                              if any(normalize(w) in normalize(c) for w in fact.clues)), None)
            if value is not None and value != conv.facts.get(fact_id):
                conv.facts[fact_id] = value
                if fact_id in conv.memory.skipped:
                    conv.memory.skipped.remove(fact_id)
                if fact_id != pending:
                    run.noted.append(fact.label)
        for fact_id in conv.memory.skipped:  # no waybill: who sent it and the route identify the goods
            instead = self._fact_type(conv, fact_id).instead
            if (instead is not None and instead.id != pending and instead.id not in conv.facts and text
                    and _SHIPMENT.search(normalize(text))):
                conv.facts[instead.id] = text.strip()
                run.noted.append(instead.label)

    def _prefill(self, run: _Run, text: str = "") -> None:
        """Takes the facts a category needs from what the customer already wrote, and the first
        message as their account of what happened when it tells a story."""
        conv = run.conversation
        self._absorb(run, text)
        run.noted.clear()  # taken from the first message: nothing to announce
        story = normalize(text)
        length, clauses = len(_WORDS.findall(story)), len([c for c in self._clauses.split(story) if c.strip()])
        if length >= STORY_LENGTH or (length >= SHORT_STORY and clauses >= 3):
            for fact_id, fact in self._category(conv).facts.items():
                if fact.describes and fact_id not in conv.facts:
                    conv.facts[fact_id] = text.strip()

    def _look_back(self, run: _Run, fact_id: str | None):
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
                elif fact is not None and fact.describes and len(_MEANINGFUL.findall(message)) >= STORY_LENGTH:
                    value = message.strip()
                if value is not None:
                    return lambda: self._take(run, fact_id, value)
        self._say(run, self.shared.texts.look_back_failed, options=self._current_options(conv))
        return lambda: None

    def _skip(self, run: _Run, fact_id: str, text: str) -> None:
        """The customer cannot give this fact: ask what identifies the same thing instead, or leave it for staff."""
        conv = run.conversation
        conv.memory.skipped.append(fact_id)
        conv.memory.misses = 0
        instead = self._fact_type(conv, fact_id).instead
        if instead is not None and len(_MEANINGFUL.findall(text)) >= STORY_LENGTH and not self.repairs.read(text).cancel:
            conv.facts[instead.id] = text.strip()  # "没有单号，发货人叫张三，从泉州发到南京的"
        elif instead is None:
            run.lead = render(self.shared.texts.moved_on.text, self._blank_values())
        self._settle(run)

    def _missed(self, run: _Run, fact_id: str | None, noted: bool = False) -> None:
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
            run.lead = render(self.shared.texts.moved_on.text, self._blank_values())
            return self._settle(run)
        attempted = fact_type.kind != "pattern" or bool(re.search(r"[0-9A-Za-z]", normalize(run.said)))
        if (memory.misses == 2 or not attempted) and fact_type.invalid_again is not None:
            return self._say(run, fact_type.invalid_again, options=self._current_options(conv))
        if fact_type.kind == "choice":
            return self._say(run, self.shared.texts.choose_again, options=self._current_options(conv))
        self._say(run, fact_type.invalid, options=self._current_options(conv))

    # -- the repairs shared by every flow -------------------------------------------------------

    def _confirm(self, run: _Run, what: str) -> None:
        """Asks whether the customer really means to drop the open complaint."""
        conv = run.conversation
        conv.memory.confirming = what
        text = self.shared.texts.confirm_cancel if what == "cancel" else self.shared.texts.confirm_bye
        self._say(run, text, options=self._current_options(conv), category=self._category(conv).name)

    def _confirmed(self, run: _Run, wants: Wants) -> bool:
        """Acts on the answer to "sure?"; False when the message is no yes or no (it is handled as usual)."""
        conv = run.conversation
        what, conv.memory.confirming = conv.memory.confirming, None
        if wants.decision is None:
            return False
        if not wants.decision:
            run.lead = render(self.shared.texts.go_on.text, self._blank_values())
            self._prompt(run)
            return True
        run.turn.events.append(Event("conversation_cancelled", {"category": conv.category, "state": conv.state}))
        self._leave(run)
        if what == "bye":
            self._goodbye(run)
        else:
            self._say(run, self.shared.texts.cancelled)
            self._after(run)
        return True

    def _handoff(self, run: _Run, text: str) -> None:
        """A person, asked for in any words: recorded on a case (opened now with what is known, if
        there is none), and the customer told who will contact them and by when."""
        conv, texts = run.conversation, self.shared.texts
        ledger = run.ledger
        in_complaint = conv.category in self.content.categories
        if conv.memory.handed is not None and not in_complaint:
            case = ledger.find_case(conv.memory.handed) if conv.memory.handed else None
            if case is not None and case.status == "open":
                return self._say(run, texts.handoff_again, **self._step_values(case.role, case.deadline, case.number))
        if in_complaint:
            number, step, deadline = self._open_case(run, self._category(conv), announce=False)
        else:
            case = next((c for c in ledger.my_cases() if c.status == "open"), None)
            if case is not None:
                number, step_role, deadline = case.number, case.role, case.deadline
                step = Step(role=step_role, action=self.content.handoff.handling[0].action, deadline_hours=1)
            else:
                complaint = self._complaint_beside_handoff(run, text)
                if complaint is not None:  # "运费乱收…我要投诉到12315": the complaint's case, with what it says
                    conv.category, conv.state, conv.facts = complaint.label, START, {}
                    self._prefill(run, text)
                    conv.facts = {k: v for k, v in conv.facts.items()}
                    kind = self._category(conv)
                else:
                    facts = {k: v for k, v in (("waybill", next(iter(run.entities.waybills), None)),
                                               ("phone", next(iter(run.entities.phones), None))) if v}
                    if text.strip() and not self._command(text):
                        facts["request"] = text.strip()
                    conv.facts, kind = facts, self.content.handoff
                number, step, deadline = self._open_case(run, kind, announce=False)
        run.turn.events.append(Event("human_requested", {"category": conv.category, "case": number, "words": text}))
        values = self._step_values(step.role, deadline, number)
        facts = dict(conv.facts)
        self._leave(run)
        conv.memory.handed = number or ""
        self._say_plain(run, render(texts.handoff.text, {**self._values(run), **values, "facts": Facts(facts)}))

    def _out_of_range(self, run: _Run, text: str) -> bool:
        """A number no option has, where a choice is asked: the valid range, and the question again."""
        conv = run.conversation
        number = option_number(text)
        if number is None or conv.state == TOPIC:
            return False
        pending = self._pending_fact(conv)
        choosing = conv.category is None or (pending is None and bool(self._state(conv).options)) or (
            pending is not None and self._fact_type(conv, pending).kind == "choice")
        options = self._current_options(conv)
        if not choosing or not options or 1 <= number <= len(options):
            return False
        self._say(run, self.shared.texts.out_of_range, options=options, what=str(number), step={"count": len(options)})
        return True

    def _goodbye(self, run: _Run) -> None:
        """Says goodbye; the event lets a channel close (the terminal chat ends there)."""
        run.turn.events.append(Event("said_goodbye"))
        self._say(run, self.shared.texts.goodbye)

    def _step_values(self, role: str, deadline: datetime, number: str | None) -> dict[str, Any]:
        return {"step": {"role": self._role_name(role), "deadline": self.local_time(deadline)},
                "case": {"number": number}}

    def _my_cases(self, run: _Run, quiet_menu: bool = False) -> None:
        """Tells the customer how their open cases stand, without their numbers being asked for."""
        cases = run.ledger.my_cases()
        texts = self.shared.texts
        if not cases:
            self._say(run, texts.no_my_cases)
        elif len(cases) == 1:
            self._case_progress(run, cases[0].number)
        else:
            lines = [self._progress_line(c) for c in cases]
            self._say(run, texts.my_cases, case={"list": lines})
        if not quiet_menu and run.conversation.category is None:
            self._after(run, ask=False)

    def _after(self, run: _Run, ask: bool = True) -> None:
        """Offers the likely next steps (progress, another problem, a person, nothing) instead of the menu."""
        conv = run.conversation
        conv.state = AFTER
        options = self._current_options(conv)
        if ask or not run.turn.replies:
            self._say(run, self.shared.texts.anything_else, options=options)
        else:
            last = run.turn.replies.pop()
            run.turn.replies.append(Reply(last.text, tuple(options)))

    # -- choices, commands and the menu ---------------------------------------------------------

    def _on_choice(self, run: _Run, value: str) -> None:
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

    def _global_move(self, run: _Run, move: str) -> None:
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

    # -- moving through a category -----------------------------------------------------------

    def _start(self, run: _Run, category_id: str, text: str = "", keep_facts: bool = False, story: bool = True) -> None:
        conv = run.conversation
        conv.memory.misses = 0
        if category_id in self.content.policies.topics:
            conv.category, conv.state, conv.facts = category_id, TOPIC, {}
            conv.memory.topic = category_id
            answer = self.fees.answer(text, run.entities, category_id, conv.facts, self._today(run), opening=True)
            if answer.topic and answer.topic != category_id:
                conv.category = conv.memory.topic = answer.topic
            if not answer.texts and not answer.problem and conv.category != "storage":
                answer = self.fees.overview(conv.category)  # chosen from the menu: what the manual says
            return self._fee_reply(run, answer)
        carried = conv.offered_text if conv.offered_text and conv.offered_text != text else ""
        conv.category, conv.state = category_id, START
        if not keep_facts:
            conv.facts = {}
            conv.case_number = None
            conv.memory.skipped = []
        conv.memory.said = [m for m in (carried, text) if m]
        if carried:  # a waybill sent before the complaint was named
            run.entities = extract(f"{carried}\n{text}", self.places, today=self._today(run))
        self._prefill(run, text if story else "")
        self._trigger(run, "begin")

    def _today(self, run: _Run) -> date:
        return run.ledger.now.astimezone(self.zone).date()

    def _trigger(self, run: _Run, trigger: str) -> None:
        machine = self.machines[run.conversation.category]  # type: ignore[index]
        machine.events[trigger].trigger(run)
        self._settle(run)

    def _settle(self, run: _Run) -> None:
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
        return pick_by_words(text, [[w for w in o.words if len(w) >= shortest] for o in state.options])

    def _entered(self, event) -> None:
        """Records what a state says and does on entry."""
        run: _Run = event.model
        category = self._category(run.conversation)
        state = category.flow.states[event.state.name]
        for point in state.say:
            self._say(run, category.answer_points[point])
        if state.open_case:
            self._open_case(run, category)
        if state.end:
            run.turn.events.append(Event("conversation_closed", {"category": category.id, "case": run.conversation.case_number}))
            self._say(run, category.closing)

    def _open_case(self, run: _Run, category: Category, announce: bool = True) -> tuple[str, Step, datetime]:
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

    def _case_progress(self, run: _Run, number: str) -> None:
        """Tells a customer where their case stands."""
        case = run.ledger.find_case(number)
        texts = self.shared.texts
        if case is None or not case.mine:
            # Case numbers are sequential; another customer's case is not shown, nor confirmed to exist.
            self._say(run, texts.status_not_found, case={"number": number})
        else:
            self._say_plain(run, self._progress_line(case))

    def _progress_line(self, case: CaseView) -> str:
        kind = self.content.case_kinds.get(case.category)
        role = self.shared.roles.get(case.role)
        return render(self.shared.texts.status.text, {**self._blank_values(), "case": {
            "number": case.number, "status": self.shared.case_statuses.get(case.status, case.status),
            "category": kind.name if kind else case.category, "open": case.status == "open",
        }, "step": {
            "number": case.step + 1, "role": role.name if role else case.role, "doing": role.doing if role else "",
            "deadline": self.local_time(case.deadline),
        }})

    def local_time(self, moment: datetime) -> str:
        """A moment as customers and staff read it: local time, e.g. 11月27日 18:00."""
        return moment.astimezone(self.zone).strftime("%m月%d日 %H:%M")

    def _leave(self, run: _Run) -> None:
        conv = run.conversation
        conv.category, conv.state, conv.later, conv.offered, conv.offered_text = None, MENU, None, [], ""
        conv.memory.misses, conv.memory.confirming, conv.memory.said = 0, None, []

    # -- what is being asked -----------------------------------------------------------------

    def _prompt(self, run: _Run, resume: bool = False) -> None:
        """Asks again whatever the conversation is waiting for, after what is to be said first (the lead)."""
        conv = run.conversation
        texts = self.shared.texts
        lead = run.lead
        if run.noted:
            lead += render(texts.noted.text, template_values("", what="、".join(run.noted)))
        if resume and conv.category in self.content.categories:
            lead += render(texts.resume.text, template_values("", category=self._category(conv).name))
        run.lead, run.noted = "", []
        if conv.memory.confirming is not None:
            return self._confirm(run, conv.memory.confirming)
        if conv.state == CLARIFY:
            return self._say(run, texts.which_one, options=self._current_options(conv), lead=lead)
        if conv.category is None:
            if lead:
                self._say_plain(run, lead.rstrip())
            return self._after(run, ask=not lead) if conv.state == AFTER else self._show_menu(run, with_prompt=True)
        if conv.state == TOPIC:
            asked = self.fees.prompt(conv.category, conv.facts)
            if asked is None:
                text = render((texts.topic_follow_up if run.turn.replies else texts.topic_more).text, self._blank_values())
                if text in conv.memory.last_lines and run.turn.replies and not lead:
                    last = run.turn.replies.pop()  # said a moment ago: the answer alone, with its button
                    return self._say_plain(run, last.text, last.options or self._current_options(conv))
                return self._say_plain(run, lead + text, options=self._current_options(conv))
            return self._say_plain(run, lead + asked, options=self._current_options(conv))
        pending = self._pending_fact(conv)
        if pending is not None:
            text = self._prompt_text(conv, pending)
        else:
            text = self._state(conv).ask  # type: ignore[assignment]
        assert text is not None
        self._say(run, text, options=self._current_options(conv), lead=lead)

    def _show_menu(self, run: _Run, with_prompt: bool = True) -> None:
        run.conversation.state = MENU if run.conversation.state == AFTER else run.conversation.state
        options = self._current_options(run.conversation)
        if with_prompt or not run.turn.replies:
            self._say(run, self.shared.texts.menu_prompt, options=options)
        else:  # attach the menu to the reply just given
            last = run.turn.replies.pop()
            run.turn.replies.append(Reply(last.text, tuple(options)))

    def _current_options(self, conv: Conversation) -> list[Option]:
        key = self._question_key(conv)
        if conv.memory.confirming is not None:
            labels = ["是，不办了" if conv.memory.confirming == "cancel" else "是，结束", "不，继续办理"]
        elif conv.state == CLARIFY:
            labels = [self._names(label)[0] for label in conv.offered] + [self.shared.back_label]
        elif conv.state == AFTER:
            labels = self._follow_up_labels()
        elif conv.category is None:
            labels = [names[0] for names, _ in self._menu_entries()]
        elif conv.state == TOPIC:
            labels = [self.shared.back_label]
        else:
            pending = self._pending_fact(conv)
            if pending is not None:
                fact = self._fact(conv, pending)
                labels = list((fact.options if fact else None) or [])
                fact_type = self._fact_type(conv, pending)
                if conv.memory.misses >= 2 or (fact_type.kind == "pattern" and conv.memory.misses >= 1):
                    if fact_type.skip_label:
                        labels.append(fact_type.skip_label)
                    labels.append(self.shared.follow_up.human)
            else:
                labels = [o.label for o in self._state(conv).options]
                if conv.memory.misses >= 2:
                    labels.append(self.shared.follow_up.human)
        return [Option(label, f"{key}:{i}") for i, label in enumerate(labels)]

    def _options(self, conv: Conversation, labels: list[str]) -> list[Option]:
        key = self._question_key(conv)
        return [Option(label, f"{key}.more:{i}") for i, label in enumerate(labels)]

    def _question_key(self, conv: Conversation) -> str:
        """Names the question now asked, short enough for Telegram's 64-byte button data."""
        if conv.memory.confirming is not None:
            return CONFIRM
        if conv.category is None:
            # menu, clarify or after; waiting for a low rating's reason, the buttons shown are the menu's
            return MENU if conv.state == REASON else conv.state
        pending = self._pending_fact(conv)
        return f"{conv.category}.{conv.state}" + (f".{pending}" if pending else "")

    def _menu_entries(self) -> list[tuple[list[str], str]]:
        return [(self._names(c), c) for c in self.shared.menu]

    def _entry(self, label: str) -> Any:
        """The category or topic with this id, or None."""
        return self.content.categories.get(label) or self.content.policies.topics.get(label)

    def _names(self, label: str) -> list[str]:
        entry = self._entry(label)
        return [entry.menu_label, entry.name]

    def _pending_fact(self, conv: Conversation) -> str | None:
        """The fact asked for now: the first of the state's facts not given, or what stands in for
        one the customer cannot give (no waybill: the sender and route)."""
        if conv.category is None or conv.state in (TOPIC, START) or conv.category not in self.content.categories:
            return None
        skipped = conv.memory.skipped
        for fact_id in self._state(conv).collect:
            if fact_id in conv.facts:
                continue
            if fact_id not in skipped:
                return fact_id
            instead = self._fact_type(conv, fact_id).instead
            if instead is not None and instead.id not in conv.facts and instead.id not in skipped:
                return instead.id
        return None

    def _fact(self, conv: Conversation, fact_id: str) -> Fact | None:
        """The category's fact (None for a stand-in such as the shipment for a missing waybill)."""
        return self._category(conv).facts.get(fact_id)

    def _fact_type(self, conv: Conversation, fact_id: str) -> FactType:
        fact = self._fact(conv, fact_id)
        if fact is not None:
            return self.shared.fact_types[fact.type]
        return self.shared.fact_types["text"]

    def _prompt_text(self, conv: Conversation, fact_id: str) -> Text:
        fact = self._fact(conv, fact_id)
        if fact is not None:
            return fact.prompt
        instead = next(t.instead for t in self.shared.fact_types.values() if t.instead and t.instead.id == fact_id)
        return instead.prompt  # type: ignore[union-attr]

    def _option_words(self, fact: Fact) -> list[list[str]]:
        return [[option, *fact.option_words.get(option, [])] for option in fact.options or []]

    def _generic(self, word: str) -> bool:
        lists = self.repairs.lists
        said = normalize(word).casefold()
        return len(said) < 2 or any(said in lists[name] for name in ("cannot_give", "affirm", "deny", "thanks", "cancel"))

    def _only_entities(self, run: _Run, text: str) -> bool:
        found = run.entities
        return bool(found.waybills or found.phones) and len(_MEANINGFUL.findall(self._without_entities(run, text))) < 4

    def _entity_labels(self, run: _Run) -> list[str]:
        labels = self.content.handoff.facts
        return [labels[k].label for k, v in (("waybill", run.entities.waybills), ("phone", run.entities.phones)) if v and k in labels]

    def _corrects_case(self, run: _Run, text: str, wants: Wants) -> bool:
        """A phone or waybill given after the case was opened or handed to a person (电话说错了，是139…):
        the customer's open case takes it, and staff see the change."""
        conv = run.conversation
        number = conv.memory.handed or conv.case_number
        found = run.entities
        if not number or not (found.phones or found.waybills):
            return False
        if not (wants.correction or conv.memory.handed or self._only_entities(run, text)):
            return False
        case = run.ledger.find_case(number)
        if case is None or case.status != "open" or not case.mine:
            return False
        facts = {k: v[0] for k, v in (("waybill", found.waybills), ("phone", found.phones)) if v}
        run.turn.events.append(Event("case_facts_corrected", {"case": number, "facts": facts}))
        run.noted = self._entity_labels(run)
        lead = render(self.shared.texts.noted.text, template_values("", what="、".join(run.noted)))
        run.noted = []
        text = self.shared.texts.handoff_again if conv.memory.handed else self.shared.texts.case_updated
        self._say_plain(run, lead + render(text.text, {**self._blank_values(), **self._step_values(case.role, case.deadline, number)}))
        return True

    def _without_entities(self, run: _Run, text: str) -> str:
        rest = normalize(text)
        for found in (*run.entities.phones, *run.entities.waybills):
            rest = rest.replace(found, "")
        return re.sub(r"[\d\s\-()+]", "", rest)

    def _category(self, conv: Conversation) -> Category:
        return self.content.categories[conv.category]  # type: ignore[index]

    def _state(self, conv: Conversation) -> State:
        return self._category(conv).flow.states[conv.state]

    def _role_name(self, role: str) -> str:
        return self.shared.roles[role].name if role in self.shared.roles else role

    # -- text ---------------------------------------------------------------------------------

    def _blank_values(self) -> dict[str, Any]:
        return template_values("")

    def _values(self, run: _Run, **extra: Any) -> dict[str, Any]:
        conv = run.conversation
        entry = self._entry(conv.category) if conv.category else None
        values = template_values(conv.salutation or "", conv.facts, conv.case_number,
                                 category=entry.name if entry else "")
        values.update(extra)
        return values

    def _say(self, run: _Run, text: Text, options: list[Option] | tuple = (), lead: str = "", **extra: Any) -> None:
        self._say_plain(run, lead + render(text.text, self._values(run, **extra)), options)

    def _say_plain(self, run: _Run, text: str, options: list[Option] | tuple = ()) -> None:
        run.turn.replies.append(Reply(text, tuple(options)))
