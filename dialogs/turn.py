"""One turn in progress, and the measures of a message the parts of the engine share."""

from __future__ import annotations

import re
from typing import Any, Protocol

from dialogs.conversation import Conversation, Ledger, Turn
from dialogs.entities import Entities

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
SHIPMENT = re.compile(r"发货人|收货人|寄件人|收件人|发货的是|从.{1,8}(?:发|寄|运)|发到|发往|寄到|运到|哪天发|号发的|发的货")
# A case number anywhere in a message is a request for that case's progress: KF-20261127-0001, KF20261127 0001.
CASE_NUMBER = re.compile(r"KF[-\s]?(\d{8})[-\s]?(\d{4,6})(?!\d)", re.IGNORECASE)
QUESTION = re.compile(r"[?？吗么呢]|多少|好多钱|多久|怎么|怎样|如何|哪|几|什么|谁|为啥|啥意思|啥时候|干啥|咋|能不能|可不可以|是否|有没有|要不要|行不行|边个|点搞|点解|点样|边度|几时|乜嘢|(?:能|可以|行|中|有|对)[^，。！？,.!?\s]{0,6}不[?？!！~～]*$|([\u4e00-\u9fff])不\1")
# What makes a question only reported ("不知道有没有保价": an answer, I do not know, not a question to answer).
REPORTED = re.compile(r"不知道|不清楚|不确定|不记得|记不清|搞不清|忘了")
# Markup pasted into a message (<script>…</script>, {{name}}): no words of the customer's problem. Linear: each
# alternative stops at the first character that closes it.
MARKUP = re.compile(r"<[^<>]{0,200}>|\{\{[^{}]{0,200}\}\}|\{%[^{}]{0,200}%\}")
# A message in another language: Latin letters, spaces and marks, three words or more, no Chinese.
FOREIGN = re.compile(r"\s*[A-Za-z'’]+(?:[\s,.!?;:]+[A-Za-z'’]+){2,}[\s,.!?;:]*")
SHORT_STORY_WORDS = 5  # a story told where a number or a choice is asked (两箱瓷砖碎了): no digits, this long
SHORT_ASK = 8  # a message this short that names a question of the FAQ asks it, question word or not (我就想问个价)
# Words that only introduce a waybill or a phone ("我的运单号是", "联系电话"): no problem told.
NAMING_NUMBERS = re.compile(r"运单号?码?|单号|快递单|托运单|手机号?码?|电话号?码?|联系方式|号码|我的|我|是|为|的|：|:|，|,|。|\s")
MEANINGFUL = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")
WORDS = re.compile(r"[\u4e00-\u9fff]")  # what a story is told in (a waybill's digits tell nothing)


class Run:
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
        self.after_case = False  # the message answers "anything else?" right after a case was opened
        self.describes = False  # the message answers "which problem? or describe what happened": its account
        self.chose_among: list[str] = []  # the problems offered to choose from, when this message answers that
        self.replaced: list[str] = []  # answer points not said: the starting message's FAQ answers it instead
        self.declined: list[str] = []  # facts this message says it cannot give though not asked for (手机号不想给)

    @property
    def state(self) -> str:
        return self.conversation.state

    @state.setter
    def state(self, value: str) -> None:
        self.conversation.state = value


class Router(Protocol):
    def classify(self, text: str) -> Any:
        """Returns an object with label, confidence, candidates ((label, confidence), best first) and
        certainty (the calibrated chance the label is right, see dialogs/intents.py)."""


def asks(said: str) -> bool:
    """Whether a message asks something: a question word (QUESTION), unless only reported after 不知道 and the
    like without a question mark ("不知道有没有保价" answers 不清楚; "不知道有没有保价？" asks)."""
    found = QUESTION.search(said)
    return found is not None and not (REPORTED.search(said[:found.start()]) and not re.search("[?？吗]", said))
