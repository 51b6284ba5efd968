"""The engine on its own: golden conversations, global moves, buttons and odd messages. No Telegram, no database."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from dialogs.conversation import AFTER, CaseView, Conversation, Inbound
from dialogs.engine import Engine
from golden import golden_params, where

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def engine(content):
    return Engine(content)


class FakeLedger:
    """Stands in for storage: numbers cases in order and remembers them."""

    def __init__(self):
        self.now = NOW
        self.cases: dict[str, CaseView] = {}
        self._counter = itertools.count(1)

    def number_case(self, category):
        return f"KF-20261127-{next(self._counter):04d}"

    def find_case(self, number):
        return self.cases.get(number)

    def my_cases(self):
        return [c for c in self.cases.values() if c.mine and c.status == "open"]


def say(engine, conv, text, ledger=None):
    ledger = ledger or FakeLedger()
    turn = engine.handle(conv, Inbound(text=str(text)), ledger)
    for event in turn.events:  # opened cases can be looked up, as in storage
        if event.kind == "case_opened":
            data = event.data
            ledger.cases[data["number"]] = CaseView(data["number"], data["category"], "open", 0, data["role"],
                                                    data["deadline"], mine=True)
    return turn


@pytest.mark.parametrize("golden", golden_params())
def test_golden_conversation(engine, content, golden):
    conv, ledger, opened = Conversation(), FakeLedger(), []
    for turn in golden["turns"]:
        result = say(engine, conv, turn["say"], ledger)
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
        # the first step's hours, counted in business hours from the moment the case opened
        assert data["deadline"] == engine.deadline(NOW, content.categories[expected["category"]].handling[0])


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
    result = engine.handle(conv, Inbound(choice=pricing.value), FakeLedger())
    assert conv.category == "pricing"
    # The same menu button pressed again, now stale: refused, and the current question is asked again.
    result = engine.handle(conv, Inbound(choice=pricing.value), FakeLedger())
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
    ledger = FakeLedger()
    for line in ["货物滞留", "12345678", "13800138000"]:
        say(engine, conv, line, ledger)
    result = say(engine, conv, "转人工", ledger)
    assert [e.kind for e in result.events] == ["human_requested"]
    assert result.events[0].data["case"] == conv.case_number == "KF-20261127-0001"
    assert "KF-20261127-0001" in result.replies[0].text


def test_human_request_mid_complaint_opens_the_case_with_what_is_known(engine):
    conv, ledger = Conversation(greeted=True), FakeLedger()
    for line in ["货物滞留", "12345678"]:
        say(engine, conv, line, ledger)
    result = say(engine, conv, "我要转人工", ledger)
    assert [e.kind for e in result.events] == ["case_opened", "human_requested"]
    assert result.events[0].data["facts"] == {"waybill": "12345678"}
    assert "客服专员会在11月27日 11:00前与您联系" in result.replies[0].text  # a person within the handoff's hour
    assert conv.category is None


def test_progress_of_own_case_by_number(engine, content):
    ledger, conv = FakeLedger(), Conversation(greeted=True)
    ledger.cases["KF-20261127-0007"] = CaseView("KF-20261127-0007", "claims", "open", 1, "branch_manager",
                                                NOW + timedelta(hours=24), mine=True)
    result = say(engine, conv, "我想查一下 kf20261127-0007 的进度", ledger)
    assert "案件 KF-20261127-0007（货损货差理赔）：处理中。分公司经理正在亲自协调处理，预计11月28日 10:00前给您回复。" in result.replies[0].text
    assert result.replies[-1].options  # and the menu again


def test_progress_is_not_shown_for_someone_elses_case(engine):
    ledger, conv = FakeLedger(), Conversation(greeted=True)
    ledger.cases["KF-20261127-0008"] = CaseView("KF-20261127-0008", "stranded", "open", 0, "branch_counter", NOW, mine=False)
    shown = [r.text for r in say(engine, conv, "KF-20261127-0008", ledger).replies]
    assert "没有查到您名下编号为 KF-20261127-0008 的案件" in shown[0]
    assert "没有查到您名下编号为 KF-20261127-0009 的案件" in say(engine, conv, "KF-20261127-0009", ledger).replies[0].text


def test_asking_for_progress_without_a_number_asks_for_it(engine):
    conv = Conversation(greeted=True)
    say(engine, conv, "货物滞留")
    result = say(engine, conv, "查询")
    assert "请发送您的案件编号" in result.replies[0].text
    assert conv.state == "collect" and "运单号" in result.replies[-1].text


def test_a_clarify_choice_keeps_the_facts_of_the_message_that_led_to_it(engine):
    conv = Conversation(greeted=True, state="clarify", offered=["pricing", "attitude"],
                        offered_text="货有问题，运单号12345678，电话13800138000")
    say(engine, conv, "1")
    assert conv.category == "pricing"
    result = say(engine, conv, "1")  # 需要，帮我核对运费
    assert conv.facts == {"waybill": "12345678", "phone": "13800138000"}
    assert "请说明您对哪一部分费用有异议" in result.replies[-1].text  # neither number is asked again


def test_a_number_in_clarify_counts_against_the_options_shown_not_the_main_menu(engine):
    offer = dict(greeted=True, state="clarify", offered=["pricing", "attitude"], offered_text="货有问题")
    conv = Conversation(**offer)
    result = say(engine, conv, "3")  # the third option shown: 返回主菜单 (the main menu's 3 is pricing)
    assert (conv.category, conv.state) == (None, "menu")
    assert len(result.replies[-1].options) == len(engine.shared.menu)
    conv = Conversation(**offer)
    result = say(engine, conv, "9")  # no such option: the valid range, not the main menu's 9
    assert (conv.category, conv.state, conv.offered) == (None, "clarify", ["pricing", "attitude"])
    assert "没有第 9 项，请回复 1 到 3 之间的数字" in result.replies[0].text and len(result.replies[0].options) == 3


def test_the_number_of_the_back_option_in_a_topic_returns_to_the_menu(engine):
    conv = Conversation(greeted=True)
    menu = say(engine, conv, "代收货款（办理、手续费、提款）").replies[-1].options
    assert [o.label for o in menu] == ["返回主菜单"]
    result = say(engine, conv, "1")
    assert (conv.category, conv.state) == (None, "menu")
    assert "没能从您的消息里找到需要的数字" not in result.replies[0].text


def test_a_short_answer_that_begins_one_option_and_is_inside_another_picks_the_first(engine):
    conv = Conversation(greeted=True)
    say(engine, conv, "配送司机不搬货、不送上楼")
    say(engine, conv, "需要")  # options: 需要，登记搬运服务 / 不需要了 / 我要投诉司机态度
    assert (conv.category, conv.state) == ("carrying", "collect")


def test_a_menu_button_pressed_while_a_low_ratings_reason_is_awaited_is_a_choice_not_the_reason(engine):
    conv = Conversation(greeted=True, state="reason", case_number="KF-20261127-0001")
    stranded = next(o for o in say(engine, conv, "帮助").replies[-1].options if o.label == "货物滞留、迟迟不发")
    result = engine.handle(conv, Inbound(choice=stranded.value), FakeLedger())
    assert [e.kind for e in result.events] == []  # no rating_reason "货物滞留、迟迟不发" for the supervisors
    assert conv.category == "stranded"
    # The menu sent before the rating (menu:N) is still the menu, not a stale question.
    conv = Conversation(greeted=True, state="reason", case_number="KF-20261127-0001")
    engine.handle(conv, Inbound(choice="menu:1"), FakeLedger())
    assert conv.category == "stranded"


def test_greetings_and_thanks_from_a_returning_customer_are_answered_kindly(engine):
    conv, ledger = Conversation(), FakeLedger()
    first = engine.handle(conv, Inbound(text="你好"), ledger)
    assert [r.text for r in first.replies].count("您好，欢迎联系盛辉物流客服！我是在线客服，很高兴为您服务。") == 1
    for line in ["货物滞留", "12345678", "13800138000"]:
        say(engine, conv, line, ledger)
    thanks = say(engine, conv, "谢谢", ledger)
    assert "不客气" in thanks.replies[0].text and "抱歉" not in thanks.replies[0].text
    assert [o.label for o in thanks.replies[-1].options] == list(engine.shared.follow_up.model_dump().values())
    hello = say(engine, conv, "你好", ledger)  # still talking: no second welcome, the next steps offered
    assert hello.replies[0].text == "在的，请问有什么可以帮您？" and hello.replies[-1].options
    say(engine, conv, "货物滞留", ledger)
    mid = say(engine, conv, "在吗", ledger)  # mid-question: greeted, and asked again
    assert "请提供您的运单号" in mid.replies[-1].text and conv.category == "stranded"


@pytest.mark.parametrize("category, state", [("retired", "collect"), ("stranded", "renamed"), ("cod", "collect"), (None, "odd")])
def test_a_conversation_stored_under_content_that_changed_starts_again_from_the_menu(engine, category, state):
    conv = Conversation(category=category, state=state, greeted=True)
    result = say(engine, conv, "2")
    assert result.events[0].kind == "conversation_reset"
    assert conv.category == "stranded" and conv.state == "collect"  # "2" then chose from the menu


@pytest.mark.parametrize("fact, value, valid", [
    ("phone", "00000000000", False),  # no area code starts 00
    ("phone", "0591-87654321", True),
    ("phone", "13800138000", True),
    ("waybill", "١٢٣٤٥٦٧٨", False),  # Arabic-Indic digits look like digits to \\d, not to a waybill
    ("waybill", "SH20261127", True),
])
def test_phones_and_waybills_are_checked_for_real(content, fact, value, valid):
    from dialogs.matching import check_fact

    assert (check_fact(value, content.shared.fact_types[fact], None) is not None) == valid


def test_when_staff_are_at_work_is_answered_and_the_complaint_goes_on(engine):
    """Probe 4 (C114): "几点下班" got the menu; asked mid-complaint, the complaint resumes after the answer."""
    conv = Conversation(greeted=True)
    first = [r.text for r in say(engine, conv, "我不想说单号 就问问你们晚上几点下班").replies]
    assert "08:30 至 18:00" in first[0]
    say(engine, conv, "2")  # 货物滞留, from the menu
    later = [r.text for r in say(engine, conv, "你们几点下班啊").replies]
    assert "08:30 至 18:00" in later[0] and conv.category == "stranded" and "运单号" in later[-1]


def test_a_grievance_told_first_is_no_answer_to_the_question_asked_after_it(engine):
    """Probe 5 (C37): "一百多箱让我自己搬" is the complaint, not "no" to the paid carrying offered next; said in
    answer to that question, "我自己搬" is the no."""
    conv = Conversation(greeted=True)
    first = [r.text for r in say(engine, conv, "司机不搬货 一百多箱让我自己搬").replies]
    assert conv.category == "carrying" and "请问您需要办理搬运增值服务吗？" in first, first
    replies = [r.text for r in say(engine, conv, "我自己搬").replies]
    assert conv.category is None and not any("搬运增值服务吗" in r for r in replies), replies


def test_an_angry_outburst_gets_an_apology_and_the_question_again(engine):
    """"你们怎么搞的！！！" at the waybill question: an apology and the same question, not "这不像运单号"."""
    conv = Conversation(greeted=True)
    say(engine, conv, "2")  # 货物滞留, from the menu
    replies = [r.text for r in say(engine, conv, "你们怎么搞的！！！").replies]
    assert replies[0].startswith("非常抱歉让您这么生气") and "运单号" in replies[-1], replies
    assert not any("不像运单号" in r for r in replies), replies


def test_a_protest_that_gives_the_last_fact_opens_the_case_instead_of_crashing(engine):
    """Probe 6, C26: the account asked last, given as a protest (我刚说了啊 …) with every other fact known:
    nothing is left to ask in that state, so the case opens (it raised AssertionError)."""
    conv = Conversation(category="attitude", state="collect",
                        facts={"who": "送货司机", "waybill": "SH20261202777", "phone": "15800001234"})
    turn = say(engine, conv, "我刚说了啊 不给卸货还骂人 就今天上午")
    assert [e.kind for e in turn.events].count("case_opened") == 1
    assert "不给卸货还骂人" in turn.events[[e.kind for e in turn.events].index("case_opened")].data["facts"]["details"]


def test_thanks_and_no_more_at_anything_else_says_goodbye(engine):
    """A customer who thanks and says there is nothing more ("算了 你们快点处理就行 谢谢 没了") at "anything else?"
    is said goodbye to, not asked the same question again."""
    conv = Conversation(state=AFTER)
    turn = say(engine, conv, "算了 你们快点处理就行 谢谢 没了")
    assert [e.kind for e in turn.events] == ["said_goodbye"], [r.text for r in turn.replies]
