"""Random conversations through the engine: whatever customers type or press, in any order, every turn is
answered, the conversation stays in a state the content has, and no reply shows a template's leftovers."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dialogs import dialogues
from dialogs.conversation import Conversation, Inbound
from dialogs.engine import Engine
from dialogs.intents import Router

# What real customers said in the test conversations, as material for random ones.
SAID = sorted({str(t["say"]) for c in dialogues.load([Path(__file__).resolve().parent.parent / "data" / "dialogues"])
               for t in c["turns"] if "say" in t})
ODD = ["", " ", "\u3000", "😀😀", "<script>alert(1)</script>", "{{ 7*7 }}", "{% for x in y %}", "\x00", "\u202e翻转",
       "1" * 300, "１２３", "-5000元", "999999999999999999999999999999元", "第0天", "0", "99", "。。。"]

_engine: Engine | None = None


def engine(content) -> Engine:
    global _engine
    if _engine is None:
        _engine = Engine(content, Router.train(content.examples()))
    return _engine


message = st.one_of(st.sampled_from(SAID), st.sampled_from(ODD), st.text(max_size=40),
                    st.builds(lambda a, b: f"{a}，{b}", st.sampled_from(SAID), st.sampled_from(SAID)))
step = st.one_of(message.map(lambda text: ("say", text)), st.integers(0, 25).map(lambda i: ("press", i)),
                 st.text(max_size=20).map(lambda data: ("forge", data)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=12))
# found by this test: no waybill, the stand-in asked for, then the waybill after all (the flow must move on)
@example(steps=[("say", "0591-83451234"), ("press", 0)] + [("say", "0591-83451234")] * 7 + [("say", "FQ20261202003")])
def test_any_sequence_of_messages_and_presses_is_answered_and_stays_valid(content, steps):
    kefu = engine(content)
    ledger = dialogues.MemoryLedger(datetime(2026, 12, 2, 22, 30, tzinfo=ZoneInfo("Asia/Shanghai")))
    conv, options = Conversation(), []
    for kind, value in steps:
        ledger.now += timedelta(minutes=7)
        if kind == "say":
            inbound = Inbound(text=value)
        elif kind == "press" and options:
            inbound = Inbound(choice=options[value % len(options)].value)
        else:  # a forged or stale button: any data a client can send
            inbound = Inbound(choice=str(value))
        turn = kefu.handle(conv, inbound, ledger)
        ledger.apply(turn)
        assert turn.replies, (kind, value)
        assert kefu._known(conv), (conv.category, conv.state)
        for reply in turn.replies:
            assert reply.text.strip()
            assert not any(mark in reply.text for mark in dialogues.FORBIDDEN)
        options = [o for r in turn.replies for o in r.options] or options
