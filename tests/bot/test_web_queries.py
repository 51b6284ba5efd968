"""The supervisor pages' reads (bot/storage/queries.py) and actions (bot/casework.py's supervision calls), on a
real database, with cases opened through the engine as customers open them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert
from sqlmodel import select

from bot.casework import Casework, CaseworkError
from bot.config import Settings
from bot.logs import mask_phones
from bot.service import Service
from bot.storage import queries
from bot.storage.queries import CaseFilter, Scope
from bot.storage.tables import CaseMarkRow, CaseRow, ConversationRow, EventRow, MessageRow, aware, utcnow
from bot.web.auth import UserError, add_user, authenticate
from dialogs.conversation import Inbound

STRANDED = ["货物滞留", "12345678", "13800138000"]
PRICING_TALK = ["运费价格问题", "1", "87654321", "运费比上次贵了一倍", "13900001111"]


@pytest.fixture
def desk(database_url):
    return Casework(Service.from_settings(Settings(database_url=database_url)))


def talk(desk: Casework, user: str, lines: list[str]) -> None:
    for line in lines:
        desk.service.receive("telegram", user, Inbound(text=line))


def numbers(desk: Casework) -> dict[str, str]:
    """Each case's number by its phone."""
    with desk.service.store.session() as session:
        return {c.contact: c.number for c in session.exec(select(CaseRow))}


def page(desk: Casework, now=None, scope: Scope = Scope(), page_number: int = 1, **filters) -> queries.CasePage:
    with desk.service.store.session() as session:
        return queries.case_page(session, CaseFilter(**filters), page_number, desk.service.engine.zone,
                                 now or utcnow(), scope)


def found(desk: Casework, **filters) -> set[str]:
    return {c.number for c in page(desk, **filters).cases}


@pytest.fixture
def two_cases(desk):
    talk(desk, "5001", STRANDED)
    talk(desk, "5002", ["我要投诉司机态度差", "送货的司机", "55667788", "13900002222"])
    return numbers(desk)


def test_cases_are_filtered_by_category_status_assignee_and_searched(desk, two_cases):
    stranded, other = two_cases["13800138000"], two_cases["13900002222"]
    assert found(desk) == {stranded, other}
    assert found(desk, category="stranded") == {stranded}
    desk.claim(other, 77)
    assert found(desk, assigned_to=77) == {other}
    desk.resolve(stranded, 11)
    assert found(desk, status="closed") == {stranded} and found(desk, status="open") == {other}
    # Search: the case number, the waybill, the phone, any word the customer wrote.
    assert found(desk, search=stranded.lower()) == {stranded}
    assert found(desk, search="55667788") == {other}
    assert found(desk, search="1380013") == {stranded}
    assert found(desk, search="态度差") == {other}
    assert found(desk, search="态度差 12345678") == set()  # every word must match
    assert found(desk, search="100%_") == set()  # LIKE's wildcards are searched for as characters


def test_cases_are_filtered_by_the_place_the_customer_named(desk):
    talk(desk, "5003", ["货从厦门发到上海，三天了还不发", "12345678", "13800138000"])  # said in a message
    talk(desk, "5004", ["货物滞留", "87654321", "13900002222"])
    with desk.service.store.session() as session, session.begin():  # and a case whose facts name a place
        case = session.exec(select(CaseRow).where(CaseRow.contact == "13900002222")).one()
        case.facts = {**case.facts, "route": "福州发泉州"}
        session.add(case)
    cases = numbers(desk)
    assert found(desk, place="厦门") == {cases["13800138000"]}
    assert found(desk, place="泉州") == {cases["13900002222"]}
    assert found(desk, place="北京") == set()


def test_overdue_and_date_range(desk, two_cases):
    with desk.service.store.session() as session:
        latest = max(aware(c.step_deadline) for c in session.exec(select(CaseRow)))
    assert found(desk, overdue=True) == set()
    assert page(desk, now=latest + timedelta(minutes=1), overdue=True).total == 2
    today = utcnow().astimezone(desk.service.engine.zone).date()
    assert page(desk, opened_from=today, opened_to=today).total == 2
    assert page(desk, opened_from=today + timedelta(days=1)).total == 0
    assert page(desk, opened_to=today - timedelta(days=1)).total == 0


def test_staff_see_only_the_cases_assigned_to_them(desk, two_cases):
    other = two_cases["13900002222"]
    desk.claim(other, 77)
    assert found(desk, scope=Scope.own(77, "amy")) == {other}
    assert found(desk, scope=Scope.own(None, "amy")) == set()  # no Telegram id: no cases of their own
    with desk.service.store.session() as session:
        assert queries.case_detail(session, two_cases["13800138000"], Scope.own(77, "amy")) is None
        assert queries.case_detail(session, other, Scope.own(77, "amy")) is not None


def test_paging_twenty_thousand_cases(desk):
    """Cases written in bulk (the engine would take minutes): paging and counting stay correct."""
    now = utcnow()
    with desk.service.store.session() as session, session.begin():
        session.execute(insert(ConversationRow), [
            {"channel": "bulk", "user_key": str(i), "state": "menu", "facts": {}, "offered": [], "offered_text": "",
             "created_at": now, "updated_at": now} for i in range(20_000)])
        first = session.exec(select(ConversationRow.id).where(ConversationRow.channel == "bulk")
                             .order_by(ConversationRow.id)).first()
        session.execute(insert(CaseRow), [
            {"number": f"KF-20261201-{i:05d}", "content_version": "bulk", "conversation_id": first + i,
             "category": "stranded" if i % 4 else "pricing", "status": "open" if i % 3 else "closed",
             "waybill": f"{10_000_000 + i}", "facts": {}, "step": 0, "step_role": "branch_counter",
             "step_deadline": now + timedelta(days=1), "opened_at": now, "top_alerted": False}
            for i in range(20_000)])
    first_page = page(desk)
    assert (first_page.total, first_page.pages, len(first_page.cases)) == (20_000, 400, 50)
    assert first_page.cases[0].number == "KF-20261201-19999"  # newest first
    last = page(desk, page_number=400)
    assert len(last.cases) == 50 and last.cases[-1].number == "KF-20261201-00000"
    assert page(desk, page_number=10_000).page == 400  # past the end: the last page
    pricing_closed = page(desk, category="pricing", status="closed", page_number=2)
    assert pricing_closed.total == len([i for i in range(20_000) if i % 4 == 0 and i % 3 == 0])
    assert all(c.category == "pricing" and c.status == "closed" for c in pricing_closed.cases)
    assert [c.number for c in page(desk, search="10012345").cases] == ["KF-20261201-12345"]


def test_a_case_shows_its_own_part_of_the_conversation_in_order(desk):
    talk(desk, "5001", STRANDED)
    first = numbers(desk)["13800138000"]
    desk.reply(first, 11, "您的货今天下午发车")
    talk(desk, "5001", ["菜单", *PRICING_TALK])
    second = numbers(desk)["13900001111"]
    with desk.service.store.session() as session:
        one = queries.case_detail(session, first)
        two = queries.case_detail(session, second)
    said = [(m.direction, m.staff_id, m.text) for m in one.messages]
    # Each case: from its own start to just before the next case's opening turn, so no complaint loses its beginning.
    assert [t for d, _, t in said if d == "in"] == STRANDED + ["菜单", *PRICING_TALK[:-1]]
    assert ("out", 11, "您的货今天下午发车") in said
    assert [m.text for m in two.messages if m.direction == "in"] == ["菜单", *PRICING_TALK]
    assert [m.id for m in one.messages] == sorted(m.id for m in one.messages)
    assert [e.kind for e in one.events][:1] == ["case_opened"] and "staff_replied" in [e.kind for e in one.events]
    assert (one.channel, one.user_key) == ("telegram", "5001")


def test_dashboard_counts_open_overdue_categories_time_to_close_and_ratings(desk, two_cases):
    stranded, other = two_cases["13800138000"], two_cases["13900002222"]
    desk.resolve(stranded, 11)
    desk.rate(stranded, 4, "telegram", "5001")
    zone = desk.service.engine.zone
    with desk.service.store.session() as session:
        now = utcnow()
        figures = queries.dashboard(session, zone, now)
        late = queries.dashboard(session, zone, now + timedelta(days=3))
        amy = queries.dashboard(session, zone, now, Scope.own(77, "amy"))
    assert (figures.open, figures.overdue, figures.closed_this_month, figures.rated) == (1, 0, 1, 1)
    assert figures.week == figures.month == {"attitude": 1, "stranded": 1}
    assert figures.rating_mean == 4 and 0 <= figures.mean_hours_to_close < 1
    assert late.overdue == 1
    assert (amy.open, amy.week) == (0, {})


def test_supervisors_note_tag_review_and_flag_with_who_and_when(desk, two_cases):
    n = two_cases["13800138000"]
    desk.note(n, "lily", "客户很着急，今天务必回电")
    desk.tag(n, "lily", "重点跟进")
    desk.tag(n, "lily", "重点跟进")  # the same tag once
    desk.mark_reviewed(n, "lily")
    with desk.service.store.session() as session:
        message = session.exec(select(MessageRow).where(MessageRow.text == "12345678")).one()
        strangers = session.exec(select(MessageRow).where(MessageRow.text == "55667788")).one()
    desk.flag_message(n, message.id, "lily", "运单号应先核对")
    with pytest.raises(CaseworkError, match="没有这条消息"):
        desk.flag_message(n, strangers.id, "lily")  # another customer's message
    with pytest.raises(CaseworkError, match="不能为空"):
        desk.note(n, "lily", "  ")
    with pytest.raises(CaseworkError, match="没有编号"):
        desk.note("KF-20990101-0001", "lily", "x")
    with desk.service.store.session() as session:
        marks = session.exec(select(CaseMarkRow).order_by(CaseMarkRow.id)).all()
        events = [e.kind for e in session.exec(select(EventRow).where(EventRow.case_number == n))]
    assert [(m.kind, m.text, m.author, m.message_id) for m in marks] == [
        ("note", "客户很着急，今天务必回电", "lily", None), ("tag", "重点跟进", "lily", None),
        ("reviewed", "", "lily", None), ("flag", "运单号应先核对", "lily", message.id)]
    assert all(m.at is not None for m in marks)
    assert {"case_note", "case_tag", "case_reviewed", "case_flag"} <= set(events)


def test_supervisors_reassign_escalate_and_close_through_casework(desk, two_cases):
    n = two_cases["13800138000"]
    with pytest.raises(CaseworkError, match="不是客服人员"):
        desk.reassign(n, 99, "lily")
    desk.add_staff(21, "staff")
    assert desk.reassign(n, 21, "lily").assigned_to == 21
    assert desk.escalate(n, None, by="lily").step == 2
    assert desk.resolve(n, None, by="lily").status == "closed"
    with desk.service.store.session() as session:
        events = {e.kind: e.data for e in session.exec(select(EventRow).where(EventRow.case_number == n))}
    assert events["case_reassigned"] == {"staff": 21, "from": None, "by": "lily"}
    assert events["step_escalated"]["by"] == "lily" and events["case_closed"]["by"] == "lily"


def test_passwords_are_hashed_and_checked(database_url, desk):
    db = desk.service.store.db
    add_user(db, "lily", "supervisor", "correct horse")
    assert authenticate(db, "lily", "correct horse").role == "supervisor"
    assert authenticate(db, "lily", "wrong horse") is None and authenticate(db, "nobody", "correct horse") is None
    from bot.storage.tables import WebUserRow

    with desk.service.store.session() as session:
        stored = session.exec(select(WebUserRow)).one().password_hash
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    add_user(db, "lily", "staff", "another one", telegram_id=21)  # the same name: changed, not added
    assert authenticate(db, "lily", "another one").telegram_id == 21
    with pytest.raises(UserError):
        add_user(db, "bob", "boss", "long enough")
    with pytest.raises(UserError):
        add_user(db, "bob", "staff", "short")


def test_phones_are_masked_and_waybills_kept():
    assert mask_phones("电话13800138000，运单12345678，座机0591-87654321") == "电话138****8000，运单12345678，座机0591-****21"




def test_a_database_from_before_the_pages_is_refused_until_upgraded_then_has_their_tables(tmp_path):
    import sqlite3

    import pytest
    from sqlalchemy import create_engine, inspect

    from bot.storage import schema
    from bot.storage.engine import connect

    connect(f"sqlite:///{tmp_path / 'kefu.db'}").dispose()
    with sqlite3.connect(tmp_path / "kefu.db") as db:  # as kefu left it at revision 0001, before the pages
        db.execute("DROP TABLE web_users")
        db.execute("DROP TABLE case_marks")
        db.execute("DROP TABLE telegram_outbox")  # and before the outbox (0003)
        db.execute("DROP INDEX ix_telegram_inbox_user_key")
        db.execute("ALTER TABLE telegram_inbox DROP COLUMN user_key")
        db.execute("UPDATE alembic_version SET version_num = '0001'")
    db.close()
    with pytest.raises(schema.SchemaError, match="run `kefu db upgrade`"):
        connect(f"sqlite:///{tmp_path / 'kefu.db'}")
    with create_engine(f"sqlite:///{tmp_path / 'kefu.db'}").begin() as conn:
        assert schema.upgrade(conn) == ("0001", schema.HEAD)
    engine = connect(f"sqlite:///{tmp_path / 'kefu.db'}")
    assert {"web_users", "case_marks"} <= set(inspect(engine).get_table_names())
