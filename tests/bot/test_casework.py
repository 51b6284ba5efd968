"""Casework on a real database: cards, claiming, replies that pause the clock, escalation, deadlines, ratings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.casework import Casework, CaseworkError
from bot.config import Settings
from bot.service import Service
from bot.storage.tables import AttachmentRow, CaseRow, ConversationRow, EventRow, MessageRow, utcnow
from dialogs.conversation import Inbound


@pytest.fixture
def desk(database_url):
    service = Service.from_settings(Settings(database_url=database_url))
    for line in ["货物滞留", "12345678", "13800138000"]:
        service.receive("telegram", "5001", Inbound(text=line))
    return Casework(service)


def number(desk) -> str:
    with desk.service.store.session() as session:
        return session.exec(select(CaseRow)).one().number


def test_card_shows_facts_step_and_canned_answers(desk):
    card = desk.card(number(desk))
    assert (card.category, card.step, card.steps, card.role) == ("stranded", 1, 3, "branch_counter")
    assert card.facts == (("运单号", "12345678"), ("联系电话", "13800138000"))
    assert card.action.startswith("联系当地托运窗口有关人员")
    assert any("要求他们务必将您的货物第一时间发出" in text for text in card.canned)
    assert (card.channel, card.user_key) == ("telegram", "5001")
    assert "第1/3步 托运窗口" in card.text()


def test_what_the_customer_adds_after_the_case_is_on_the_card(desk):
    n = number(desk)
    for line in ["就是上周五从福州发的那票", "能不能快点 我急用"]:
        replies = desk.service.receive("telegram", "5001", Inbound(text=line))
        assert any(n in reply.text and "已更新" in reply.text for reply in replies)
    assert desk.card(n).facts[-1] == ("客户补充", "就是上周五从福州发的那票；能不能快点 我急用")


def test_staff_registry_and_where_cards_go(desk):
    desk.add_staff(11, "staff", chat_id=-100, handles=["branch_counter"])
    desk.add_staff(12, "staff", chat_id=-200)
    desk.add_staff(13, "supervisor", chat_id=-300)
    assert desk.staff(11).handles == ("branch_counter",) and desk.staff(99) is None
    assert desk.chats_for("branch_counter") == [-100]
    assert desk.chats_for("group_cs") == [-300, -200, -100]  # nobody covers it: every staff chat
    assert desk.supervisor_chats() == [-300]
    with pytest.raises(CaseworkError):
        desk.add_staff(14, "boss")


def test_reply_pauses_the_clock_until_the_customer_answers(desk):
    n = number(desk)
    before = desk.card(n).deadline
    card = desk.reply(n, 11, "请问您的货是哪天托运的？")
    assert card.paused and card.assigned_to == 11
    with desk.service.store.session() as session:
        staff_msg = session.exec(select(MessageRow).where(MessageRow.staff_id == 11)).one()
        assert staff_msg.text == "请问您的货是哪天托运的？" and staff_msg.direction == "out"
    # Paused cases are never reminded, however late.
    assert desk.due(utcnow() + timedelta(days=30)) == []
    # The customer answers three days later: the working hours in between (whatever the time of day
    # the test runs at) are given back to the step.
    with desk.service.store.session() as session, session.begin():
        case = session.exec(select(CaseRow).where(CaseRow.number == n)).one()
        case.paused_at = utcnow() - timedelta(days=3)
        session.add(case)
    followed = desk.customer_wrote("telegram", "5001")
    assert followed is not None and followed.assigned_to == 11 and not followed.paused
    assert desk.card(n).deadline > before  # the paused time is added back


def test_missed_deadline_is_reminded_then_escalated_then_told_to_supervisors(desk):
    n = number(desk)
    late = desk.card(n).deadline + timedelta(minutes=1)
    [remind] = desk.due(late)
    assert (remind.kind, remind.card.step) == ("remind", 1)
    assert desk.due(late + timedelta(minutes=1)) == []  # reminded once
    [escalated] = desk.due(late + desk.grace)
    assert (escalated.kind, escalated.card.step, escalated.card.role) == ("escalated", 2, "branch_manager")
    card = desk.escalate(n, 11)
    assert card.step == 3
    with pytest.raises(CaseworkError, match="最后一步"):
        desk.escalate(n, 11)
    last = desk.card(n).deadline + timedelta(minutes=1)
    assert [d.kind for d in desk.due(last)] == ["remind"]
    assert [d.kind for d in desk.due(last + desk.grace)] == ["top"]
    assert desk.due(last + desk.grace * 2) == []


def test_resolve_then_rating_high_and_low_with_reason(desk):
    n = number(desk)
    desk.claim(n, 11)
    closed = desk.resolve(n, 11)
    assert closed.status == "closed"
    with pytest.raises(CaseworkError, match="已办结"):
        desk.reply(n, 11, "还在吗")
    ask = desk.rating_request(n)
    assert n in ask.text and [o.value for o in ask.options] == [f"rate:{n}:{s}" for s in range(1, 6)]
    with pytest.raises(CaseworkError):
        desk.rate(n, 5, "telegram", "someone-else")
    low = desk.rate(n, 1, "telegram", "5001")
    assert [o.label for o in low.options] == desk.content.shared.rating_reasons
    # The customer answers in words: the engine takes the next message as the reason.
    replies = desk.service.receive("telegram", "5001", Inbound(text="等了五天才有人理我"))
    assert "谢谢您的意见" in replies[0].text
    with desk.service.store.session() as session:
        case = session.exec(select(CaseRow)).one()
        assert (case.rating, case.rating_reason) == (1, "等了五天才有人理我")
        kinds = [e.kind for e in session.exec(select(EventRow).where(EventRow.case_number == n))]
    assert {"case_claimed", "case_closed", "case_rated", "rating_reason"} <= set(kinds)
    # Asked once: a second reason or a second rating (a forged or repeated press) changes nothing.
    with pytest.raises(CaseworkError):
        desk.rating_reason(n, "处理太慢", "telegram", "5001")
    with pytest.raises(CaseworkError):
        desk.rate(n, 5, "telegram", "5001")
    with desk.service.store.session() as session:
        assert session.exec(select(CaseRow)).one().rating == 1


def test_forged_rating_presses_change_nothing_and_tell_nothing(desk):
    """A customer can send any button data: rate an open case, rate again and again, probe case numbers."""
    n = number(desk)
    with pytest.raises(CaseworkError) as open_case:
        desk.rate(n, 1, "telegram", "5001")  # the case is still open: no rating was asked for
    with pytest.raises(CaseworkError) as reason:
        desk.rating_reason(n, "乱评", "telegram", "5001")  # no low rating, no reason
    with pytest.raises(CaseworkError) as someone_elses:
        desk.rate(n, 1, "telegram", "intruder")
    with pytest.raises(CaseworkError) as no_such:
        desk.rate("KF-20990101-9999", 1, "telegram", "intruder")
    assert str(someone_elses.value) == str(no_such.value) == str(open_case.value) == str(reason.value)
    with desk.service.store.session() as session:
        case = session.exec(select(CaseRow)).one()
        kinds = [e.kind for e in session.exec(select(EventRow))]
    assert (case.rating, case.rating_reason) == (None, None) and "case_rated" not in kinds


def test_staff_chats_and_the_roles_they_cover_are_checked(desk):
    desk.add_staff(11, "staff", chat_id=-100)
    desk.add_staff(12, "admin")  # no chat of their own
    assert desk.staff_chats() == [-100]
    with pytest.raises(CaseworkError, match="未知的处理角色"):
        desk.add_staff(14, "staff", handles=["janitor"])


def test_a_staff_reply_is_headed_with_its_case_for_the_customer(desk):
    n = number(desk)
    assert desk.reply_text(n, "  今天下午发车 ") == f"客服回复（案件 {n}）：\n今天下午发车"


def test_words_for_the_staff_member_are_relayed_only_when_nothing_else_is_going_on(desk):
    n = number(desk)
    assert desk.relay("telegram", "5001", "我明天上午在家") is None  # nobody follows the case yet
    desk.claim(n, 11)
    card, answer = desk.relay("telegram", "5001", "我明天上午在家")
    assert card.number == n and n in answer.text
    for engine_words in ("菜单", "/help", "2", f"查询 {n}"):
        assert desk.relay("telegram", "5001", engine_words) is None
    desk.service.receive("telegram", "5001", Inbound(text="货物滞留"))  # a new complaint: its answers are the engine's
    assert desk.relay("telegram", "5001", "87654321") is None
    with desk.service.store.session() as session:
        said = [m.text for m in session.exec(select(MessageRow).where(MessageRow.direction == "in"))]
        kinds = [e.kind for e in session.exec(select(EventRow))]
    assert "我明天上午在家" in said and "relayed_to_staff" in kinds


def test_evidence_sent_before_a_case_joins_it_when_it_opens(desk):
    early = desk.attach("telegram", "5002", "photo", "F1", {"caption": "外箱"}, "[照片] 外箱")
    assert "登记案件时会一并附上" in early.text
    for line in ["货物滞留", "87654321", "13900001111"]:
        desk.service.receive("telegram", "5002", Inbound(text=line))
    later = desk.attach("telegram", "5002", "document", "F2", {"file_name": "单据.pdf"}, "[文件 单据.pdf]")
    with desk.service.store.session() as session:
        mine = session.exec(select(CaseRow).where(CaseRow.contact == "13900001111")).one().number
        kept = session.exec(select(AttachmentRow).order_by(AttachmentRow.id)).all()
    assert mine in later.text
    assert [(a.file_id, a.case_number, a.meta) for a in kept] == [("F1", mine, {"caption": "外箱"}),
                                                                   ("F2", mine, {"file_name": "单据.pdf"})]
    assert desk.latest_case("telegram", "5002") == mine


def test_a_low_rating_in_the_middle_of_a_new_complaint_leaves_it_alone(desk):
    n = number(desk)
    desk.resolve(n, 11)
    desk.service.receive("telegram", "5001", Inbound(text="货物滞留"))
    desk.rate(n, 1, "telegram", "5001")
    with desk.service.store.session() as session:
        conv = session.exec(select(ConversationRow)).one()
        assert (conv.category, conv.state) == ("stranded", "collect")  # not thrown into the reason question
    desk.rating_reason(n, "处理太慢", "telegram", "5001")
    with desk.service.store.session() as session:
        assert session.exec(select(CaseRow)).one().rating_reason == "处理太慢"


def test_kefu_cases_lists_the_overdue_ones_a_supervisor_asks_for(desk, database_url, tmp_path):
    """`kefu cases --overdue` (and its other filters) read what the supervisor pages read: a case past its
    deadline with its clock running is listed and marked; one paused for the customer, or on time, is not."""
    import os
    import subprocess
    import sys

    service = desk.service
    for user, lines in (("5002", ["司机态度太差了", "SH20261250", "昨天送货时骂人", "13800138001"]),
                        ("5003", ["货物送错地方了", "SH20261251", "应该到福州，现在显示在厦门", "13800138002"])):
        for line in lines:
            service.receive("telegram", user, Inbound(text=line))
    with service.store.session() as session:
        late, paused, on_time = session.exec(select(CaseRow).order_by(CaseRow.id)).all()
        late.step_deadline = utcnow() - timedelta(hours=2)
        paused.step_deadline, paused.paused_at = utcnow() - timedelta(hours=2), utcnow() - timedelta(hours=3)
        session.add_all([late, paused])
        session.commit()
        numbers = (late.number, paused.number, on_time.number)

    def kefu(*args: str) -> subprocess.CompletedProcess:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}, "KEFU_DATABASE_URL": database_url}
        return subprocess.run([sys.executable, "-m", "bot", "cases", *args], cwd=tmp_path, capture_output=True,
                              text=True, env=env, timeout=120)

    listed = kefu("--overdue")
    assert listed.returncode == 0, listed.stderr
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == [numbers[0]]
    assert listed.stdout.rstrip().endswith("超时")
    every = kefu().stdout.splitlines()
    assert [line.split("\t")[0] for line in every] == list(numbers)
    assert [line.endswith("超时") for line in every] == [True, False, False]
    assert [line.split("\t")[0] for line in kefu("--category", "misrouted").stdout.splitlines()] == [numbers[2]]
    assert [line.split("\t")[0] for line in kefu("--search", "SH20261250").stdout.splitlines()] == [numbers[1]]
    none = kefu("--overdue", "--category", "misrouted")
    assert none.returncode == 0 and none.stdout == "" and "no cases match" in none.stderr
    unknown = kefu("--category", "strandd")
    assert unknown.returncode == 2 and "no category 'strandd'" in unknown.stderr
