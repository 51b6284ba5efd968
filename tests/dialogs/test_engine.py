"""The engine on its own: golden conversations, global moves, buttons and odd messages. No Telegram, no database."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from dialogs.conversation import Conversation, Inbound
from dialogs.engine import Engine
from golden import golden_params, where

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def engine(content):
    return Engine(content)


def numbers():
    counter = itertools.count(1)
    return lambda category: f"KF-TEST-{next(counter):04d}"


def say(engine, conv, text, number_case=None):
    return engine.handle(conv, Inbound(text=str(text)), NOW, number_case or numbers())


@pytest.mark.parametrize("golden", golden_params())
def test_golden_conversation(engine, content, golden):
    conv, number_case, opened = Conversation(), numbers(), []
    for turn in golden["turns"]:
        result = say(engine, conv, turn["say"], number_case)
        shown = "\n".join(r.text for r in result.replies)
        for fragment in turn.get("expect", []):
            assert fragment in shown, f"after {turn['say']!r}"
        if "state" in turn:
            assert where(conv.category, conv.state) == turn["state"], f"after {turn['say']!r}"
        opened += [e for e in result.events if e.kind == "case_opened"]
    expected = golden.get("case")
    assert len(opened) == (1 if expected else 0)
    if expected:
        data = opened[0].data
        assert data["category"] == expected["category"]
        assert data["role"] == expected["role"] == content.categories[expected["category"]].handling[0].role
        assert data["step"] == 0
        assert data["facts"]["waybill"] == expected["waybill"]
        assert data["facts"]["phone"] == expected["contact"]
        for key, value in expected.get("facts", {}).items():
            assert data["facts"][key] == value
        hours = content.categories[expected["category"]].handling[0].deadline_hours
        assert data["deadline"] == NOW + timedelta(hours=hours)


def test_one_machine_per_category_shared_by_all_conversations(engine, content):
    assert set(engine.machines) == set(content.categories)
    first, second = Conversation(), Conversation()
    say(engine, first, "服务态度问题")
    say(engine, second, "运费价格问题")
    assert (first.category, second.category) == ("attitude", "pricing")
    assert engine.machines["attitude"].models == []  # conversations are never added to the machine


def test_pressed_option_counts_only_for_the_question_asked_now(engine):
    conv = Conversation()
    menu = say(engine, conv, "你好").replies[-1].options
    pricing = next(o for o in menu if o.label == "运费价格问题")
    result = engine.handle(conv, Inbound(choice=pricing.value), NOW, numbers())
    assert conv.category == "pricing"
    # The same menu button pressed again, now stale: refused, and the current question is asked again.
    result = engine.handle(conv, Inbound(choice=pricing.value), NOW, numbers())
    assert "这个选项已经失效了" in result.replies[0].text
    assert result.replies[-1].options[0].label == "需要，帮我核对运费"
    assert conv.state == "answer"
    assert all(len(o.value.encode()) <= 64 for o in result.replies[-1].options)


def test_typed_number_and_full_width_number_choose_from_the_menu(engine):
    for typed in ("2", "２", "第2个", "2."):
        conv = Conversation(greeted=True)
        say(engine, conv, typed)
        assert conv.category == "stranded", typed


@pytest.mark.parametrize("odd", ["", "   ", "😀😀😀", "<b>加粗</b><script>alert(1)</script>", "{{ 7*7 }}", "{% for x in y %}", "啊" * 100_000])
def test_odd_messages_get_a_helpful_reply(engine, odd):
    conv = Conversation(greeted=True)
    result = say(engine, conv, odd)
    shown = "\n".join(r.text for r in result.replies)
    assert result.replies[-1].options, "the menu is offered again"
    assert "49" not in shown and "alert" not in shown


def test_free_text_fact_keeps_template_syntax_as_plain_text(engine):
    conv = Conversation(greeted=True)
    say(engine, conv, "服务态度问题")
    say(engine, conv, "1")
    say(engine, conv, "{{ 7*7 }} <b>司机</b>")
    assert conv.facts["details"] == "{{ 7*7 }} <b>司机</b>"


def test_menu_command_leaves_a_half_filled_complaint(engine):
    conv = Conversation(greeted=True)
    say(engine, conv, "货物滞留")
    say(engine, conv, "12345678")
    result = say(engine, conv, "菜单")
    assert (conv.category, conv.state) == (None, "menu")
    assert result.replies[-1].options


def test_human_request_is_an_event_with_the_case(engine):
    conv = Conversation(greeted=True)
    number_case = numbers()
    for line in ["货物滞留", "12345678", "13800138000"]:
        say(engine, conv, line, number_case)
    result = say(engine, conv, "转人工", number_case)
    assert [e.kind for e in result.events] == ["human_requested"]
    assert result.events[0].data["case"] == conv.case_number == "KF-TEST-0001"
    assert "KF-TEST-0001" in result.replies[0].text
