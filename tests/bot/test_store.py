"""Storage through the service, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from sqlmodel import select

from bot.config import Settings
from bot.service import Service
from bot.storage import queries
from bot.storage.tables import CaseRow, EventRow, MessageRow
from dialogs.conversation import Inbound

ODD = ["", "😀🚚📦", "<b>你好</b><script>x</script>", "{{ 7*7 }} {% raw %}", "运单" * 60_000, "\u200b\t 带空白 \n"]


def service(url: str) -> Service:
    return Service.from_settings(Settings(database_url=url))


def talk(svc: Service, user: str, *lines: str):
    return [svc.receive("console", user, Inbound(text=line)) for line in lines]


def test_a_case_and_every_message_are_stored(database_url):
    svc = service(database_url)
    talk(svc, "u1", "你好", "货物滞留", "12345678", "13800138000")
    with svc.store.session() as session:
        case = session.exec(select(CaseRow)).one()
        assert (case.category, case.waybill, case.contact, case.step_role) == ("stranded", "12345678", "13800138000", "branch_counter")
        assert case.content_version == svc.content.version
        kinds = [e.kind for e in session.exec(select(EventRow))]
        assert "case_opened" in kinds and "conversation_closed" in kinds
        messages = session.exec(select(MessageRow).order_by(MessageRow.id)).all()
        assert [m.text for m in messages if m.direction == "in"] == ["你好", "货物滞留", "12345678", "13800138000"]
        # Each inbound message records the state it arrived in.
        assert [m.state for m in messages if m.direction == "in"] == ["menu", "menu", "collect", "collect"]


def test_odd_messages_are_stored_exactly_and_answered(database_url):
    svc = service(database_url)
    for odd in ODD:
        replies = svc.receive("console", "odd", Inbound(text=odd))
        assert replies and replies[-1].options
    with svc.store.session() as session:
        stored = [m.text for m in session.exec(select(MessageRow).where(MessageRow.direction == "in").order_by(MessageRow.id))]
    assert stored == ODD


def test_a_restarted_service_resumes_every_conversation(database_url):
    talk(service(database_url), "a", "服务态度问题", "1")
    talk(service(database_url), "b", "运费价格问题")
    again = service(database_url)  # as if kefu had been stopped and started
    [a_reply] = talk(again, "a", "司机态度很差")
    assert "请提供相关的运单号" in a_reply[-1].text
    [b_reply] = talk(again, "b", "1")
    assert "请提供运单号" in b_reply[-1].text


def test_case_numbers_count_up_within_a_day(database_url):
    svc = service(database_url)
    for user in ("x", "y"):
        talk(svc, user, "货物滞留", "12345678", "13800138000")
    with svc.store.session() as session:
        numbers = [c.number for c in session.exec(select(CaseRow).order_by(CaseRow.id))]
    assert [n[-4:] for n in numbers] == ["0001", "0002"]
    assert numbers[0][:-4] == numbers[1][:-4]


def test_case_numbers_stay_unique_and_gapless_when_many_turns_open_cases_at_once(database_url):
    from concurrent.futures import ThreadPoolExecutor

    from bot.storage.tables import CaseCounterRow

    svc = service(database_url)
    talk(svc, "warm", "你好")  # the router trained once, before the race
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda user: talk(svc, user, "货物滞留", "12345678", "13800138000"), [f"u{i}" for i in range(6)]))
    with svc.store.session() as session:
        numbers = sorted(c.number[-4:] for c in session.exec(select(CaseRow)))
        assert numbers == [f"{i:04d}" for i in range(1, 7)]
        # A database from before the counter: the day's count goes on after the cases already numbered.
        for counter in session.exec(select(CaseCounterRow)):
            session.delete(counter)
        session.commit()
    talk(svc, "late", "货物滞留", "12345678", "13800138000")
    with svc.store.session() as session:
        assert max(c.number for c in session.exec(select(CaseRow))).endswith("0007")


def test_the_telegram_inbox_keeps_updates_until_handled_and_drops_redeliveries(database_url):
    from datetime import timedelta

    from bot.storage.inbox import Inbox
    from bot.storage.tables import InboxRow

    svc = service(database_url)
    inbox = Inbox(svc.store.db)
    assert inbox.add(7, {"update_id": 7, "message": {"text": "你好"}})
    assert inbox.add(8, {"update_id": 8})
    assert not inbox.add(7, {"update_id": 7})  # delivered again: already kept
    assert [u["update_id"] for u in inbox.pending()] == [7, 8]
    inbox.finish(7)
    assert inbox.fail(8, "RuntimeError: the engine\nbroke", attempts=2, first_wait=timedelta(0)) == "retry"
    inbox.finish(8)  # a failed update keeps its failure
    assert inbox.pending() == []
    with svc.store.session() as session:
        assert {r.update_id: r.status for r in session.exec(select(InboxRow))} == {7: "done", 8: "retry"}
    assert [u["update_id"] for u in inbox.due()] == [8] and inbox.due() == []  # taken once, pending again
    assert inbox.fail(8, "RuntimeError: again", attempts=2, first_wait=timedelta(0)) == "dead"
    assert inbox.due() == []  # dead: no more tries
    with svc.store.reading() as session:
        [dead] = queries.failed_updates(session)
    assert (dead.update_id, dead.status, dead.attempts, dead.error) == (8, "dead", 2, "RuntimeError: again")
    inbox.prune(older_than=timedelta(0))  # handled updates go; failures stay until dealt with
    with svc.store.session() as session:
        assert [r.update_id for r in session.exec(select(InboxRow))] == [8]
    assert inbox.retry(8) and not inbox.retry(7)
    assert [u["update_id"] for u in inbox.due()] == [8]  # tried once more
    assert inbox.fail(8, "RuntimeError: still", attempts=2, first_wait=timedelta(0)) == "dead"


def test_a_failed_update_is_retried_with_growing_waits(database_url):
    from datetime import timedelta

    from bot.storage.inbox import Inbox
    from bot.storage.tables import InboxRow, aware, utcnow

    inbox = Inbox(service(database_url).store.db)
    inbox.add(9, {"update_id": 9})
    before = utcnow()
    inbox.fail(9, "x", attempts=4, first_wait=timedelta(seconds=10))
    inbox.due()  # not yet
    with service(database_url).store.session() as session:
        first = aware(session.get(InboxRow, 9).retry_at) - before
    assert timedelta(seconds=10) <= first < timedelta(seconds=12)
    assert inbox.due() == []
    with service(database_url).store.session() as session:
        row = session.get(InboxRow, 9)
        row.status = "pending"
        session.add(row)
        session.commit()
    before = utcnow()
    inbox.fail(9, "x", attempts=4, first_wait=timedelta(seconds=10))
    with service(database_url).store.session() as session:
        second = aware(session.get(InboxRow, 9).retry_at) - before
    assert timedelta(seconds=60) <= second < timedelta(seconds=62)


def test_a_message_adapted_for_the_engine_is_stored_as_sent(database_url):
    svc = service(database_url)
    replies = svc.receive("telegram", "7", Inbound(text="/start", as_sent="/start@kefu_bot campaign-7"))
    assert replies[-1].options  # the engine saw /start
    with svc.store.session() as session:
        stored = session.exec(select(MessageRow).where(MessageRow.direction == "in")).one()
    assert stored.text == "/start@kefu_bot campaign-7"


def test_a_replayed_update_runs_its_turn_once(database_url):
    from bot.storage.inbox import Inbox

    svc = service(database_url)
    inbox = Inbox(svc.store.db)
    assert inbox.add(42, {"update_id": 42})
    first = svc.handle("telegram", "8", Inbound(text="货物滞留"), update_id=42)
    assert first.replies
    # The process died after the turn committed but before the update was marked done: it is replayed.
    again = svc.handle("telegram", "8", Inbound(text="货物滞留"), update_id=42)
    assert again.replies == [] and again.events == []
    with svc.store.session() as session:
        assert len(session.exec(select(MessageRow).where(MessageRow.direction == "in")).all()) == 1
    assert inbox.pending() == []


def test_what_no_text_column_holds_is_kept_as_a_replacement_character_not_a_failed_turn(database_url):
    """A lone surrogate (and NUL on PostgreSQL) cannot be stored: the turn is kept, with U+FFFD in its place."""
    service = Service.from_settings(Settings(database_url=database_url))
    replies = service.receive("console", "odd", Inbound(text="货物\udc80滞留\x00了"))
    assert replies  # answered, not crashed
    with service.store.session() as session:
        [said] = [m.text for m in session.exec(select(MessageRow).where(MessageRow.direction == "in"))]
    nul = "\ufffd" if database_url.startswith("postgresql") else "\x00"
    assert said == f"货物\ufffd滞留{nul}了"


def test_a_reader_in_another_process_is_not_held_up_by_a_turn_in_progress(sqlite_url):
    """SQLite: a turn holds the write lock from BEGIN to commit; `kefu cases` in another process reads
    the last commit meanwhile instead of failing with "database is locked" (it used to take the lock too)."""
    import os
    import subprocess
    import sys

    svc = service(sqlite_url)
    talk(svc, "a", "货放你们那三天了还不发", "12345678", "13800138000")
    env = {**os.environ, "KEFU_DATABASE_URL": sqlite_url}
    with svc.store.turn("console", "b") as tx:  # another customer's turn, not yet committed
        tx.record(Inbound(text="在吗"), svc.engine.handle(tx.conversation, Inbound(text="在吗"), tx))
        listed = subprocess.run([sys.executable, "-m", "bot", "cases"], capture_output=True, text=True, env=env,
                                timeout=120)
        staff = subprocess.run([sys.executable, "-m", "bot", "staff", "list"], capture_output=True, text=True,
                               env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("KF-") == 1 and "stranded" in listed.stdout
    assert staff.returncode == 0 and "locked" not in staff.stderr


def test_a_five_megabyte_message_is_kept_whole_and_answered_from_its_beginning(sqlite_url):
    """Issue 13's F19: a 5 MB line (a pasted document, in kefu chat) was understood clause by clause for
    minutes. The engine reads as far as a Telegram message goes; the transcript keeps every character."""
    kefu = service(sqlite_url)
    text = "货放你们那三天了还不发，" + "司机态度也很差，" * 650_000 + "完"  # about 5 MB in UTF-8
    assert len(text.encode()) > 5_000_000
    replies = kefu.receive("console", "paste", Inbound(text=text))
    assert replies and any("运单号" in r.text for r in replies)  # the complaint at its start is understood
    with kefu.store.reading() as session:
        stored = session.exec(select(MessageRow).where(MessageRow.direction == "in")).one()
    assert stored.text == text


def test_sqlite_checkpoints_run_on_a_thread_of_their_own_not_in_a_turn(tmp_path):
    """The write-ahead log is copied into the database by a background thread; a turn's commit does so
    only past the backstop (Checkpointer.BACKSTOP pages), and the thread ends with its engine."""
    import gc
    import threading
    import time
    from contextlib import closing

    from sqlalchemy import text

    from bot.storage.engine import Checkpointer

    svc = service(f"sqlite:///{tmp_path / 'k.db'}")
    with svc.store.db.connect() as conn:
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == Checkpointer.BACKSTOP
    talk(svc, "c1", "你好", "货物滞留", "12345678", "13800138000")
    assert any(t.name == "kefu-checkpoint" for t in threading.enumerate())
    time.sleep(1)  # a checkpoint has run: every committed page is in the database file
    import sqlite3

    with closing(sqlite3.connect(tmp_path / "k.db", isolation_level=None)) as plain:
        busy, logged, copied = plain.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and logged == copied > 0
    svc.store.db.dispose()
    del svc, conn
    gc.collect()
    deadline = time.monotonic() + 5
    while any(t.name == "kefu-checkpoint" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "kefu-checkpoint" for t in threading.enumerate())
