"""One customer's data on request, on SQLite and PostgreSQL: export shows everything kept about them,
erase removes it but keeps anonymous case statistics, retention erases old closed conversations;
all audited. And kefu staff remove."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from bot import customers
from bot.casework import Casework
from bot.config import Settings
from bot.service import Service
from bot.storage.queries import audit_entries
from bot.storage.tables import AttachmentRow, CaseRow, ConversationRow, EventRow, InboxRow, MessageRow, utcnow
from dialogs.conversation import Inbound

CUSTOMER, OTHER = "5001", "5002"
WORDS = ["货物滞留", "SH20261127", "13800138000"]


@pytest.fixture
def desk(database_url):
    """Two customers with a case each; the first sent a photo, was answered by staff, rated low with a reason,
    and has a raw Telegram update in the inbox."""
    service = Service.from_settings(Settings(database_url=database_url))
    for user, phone in ((CUSTOMER, "13800138000"), (OTHER, "13900139000")):
        for line in ["货物滞留", "SH20261127", phone]:
            service.receive("telegram", user, Inbound(text=line))
    desk = Casework(service)
    number = desk.latest_case("telegram", CUSTOMER)
    desk.attach("telegram", CUSTOMER, "photo", "file-abc", {"caption": "外箱破损"}, "[照片] 外箱破损")
    desk.reply(number, 11, "王先生您好，已联系网点")
    desk.resolve(number, 11)
    desk.rate(number, 1, "telegram", CUSTOMER)
    desk.rating_reason(number, "快递员王师傅 13700001111 骂人", "telegram", CUSTOMER)
    with Session(service.store.db) as session, session.begin():
        session.add(InboxRow(update_id=77, status="done", data={
            "update_id": 77, "message": {"from": {"id": int(CUSTOMER), "first_name": "王"},
                                         "chat": {"id": int(CUSTOMER), "type": "private"}, "text": "货物滞留"}}))
        session.add(InboxRow(update_id=78, status="done", data={
            "update_id": 78, "message": {"from": {"id": int(OTHER)}, "chat": {"id": int(OTHER)}, "text": "你好"}}))
    return desk


def test_export_holds_everything_kept_about_the_customer(desk):
    data = customers.export(desk.service.store.db, CUSTOMER)
    json.dumps(data, ensure_ascii=False)  # plain JSON
    [conv] = data["conversations"]
    assert (conv["channel"], conv["user_key"]) == ("telegram", CUSTOMER)
    said = [m["text"] for m in conv["messages"] if m["direction"] == "in"]
    assert said[:3] == WORDS and "[照片] 外箱破损" in said
    assert "王先生您好，已联系网点" in [m["text"] for m in conv["messages"]]
    [case] = conv["cases"]
    assert (case["waybill"], case["contact"], case["rating"]) == ("SH20261127", "13800138000", 1)
    assert case["rating_reason"] == "快递员王师傅 13700001111 骂人"
    assert [a["file_id"] for a in conv["attachments"]] == ["file-abc"]
    assert "case_opened" in [e["kind"] for e in conv["events"]]
    assert [u["update_id"] for u in data["telegram_updates"]] == [77]
    assert "13900139000" not in json.dumps(data)  # nothing of the other customer
    with desk.service.store.session() as session:
        [entry] = audit_entries(session)
        assert (entry.action, entry.subject, entry.detail) == ("customer_export", CUSTOMER, {"conversations": 1, "updates": 1})


def test_erase_removes_personal_data_and_keeps_case_statistics(desk):
    db = desk.service.store.db
    counts = customers.erase(db, CUSTOMER)
    assert counts["conversations"] == 1 and counts["cases"] == 1 and counts["attachments"] == 1 and counts["updates"] == 1
    after = customers.export(db, CUSTOMER)
    assert after["conversations"] == [] and after["telegram_updates"] == []
    with Session(db) as session:
        rows = json.dumps([r.model_dump(mode="json") for table in (ConversationRow, CaseRow, EventRow, MessageRow,
                                                                    AttachmentRow, InboxRow)
                           for r in session.exec(select(table))], ensure_ascii=False)
        for personal in ["13800138000", "13700001111", "骂人", "外箱破损", "file-abc", "王先生"]:
            assert personal not in rows
        case = session.exec(select(CaseRow).where(CaseRow.rating.is_not(None))).one()
        assert (case.category, case.status, case.rating, case.step_role) == ("stranded", "closed", 1, "branch_counter")
        assert case.waybill is None and case.facts == {} and case.closed_at is not None
        kinds = [e.kind for e in session.exec(select(EventRow).where(EventRow.case_number == case.number))]
        assert {"case_opened", "case_closed", "case_rated"} <= set(kinds)
        other = session.exec(select(CaseRow).where(CaseRow.contact == "13900139000")).one()  # untouched
        assert other.waybill == "SH20261127"
        assert [a.action for a in audit_entries(session)] == ["customer_erase", "customer_export"]
    # Writing again starts afresh.
    replies = desk.service.receive("telegram", CUSTOMER, Inbound(text="你好"))
    assert "欢迎联系" in replies[0].text


def test_retention_erases_only_old_conversations_whose_cases_are_closed(desk):
    db = desk.service.store.db
    assert customers.purge(db, days=30) == 0  # everything is recent
    later = utcnow() + timedelta(days=31)
    assert customers.purge(db, days=30, now=later) == 1  # the other customer's case is still open
    with Session(db) as session:
        users = {c.user_key for c in session.exec(select(ConversationRow))}
        assert OTHER in users and CUSTOMER not in users
        assert audit_entries(session)[-1].action == "retention_erase"
    assert customers.purge(db, days=30, now=later) == 0  # already erased


def test_staff_remove(desk):
    desk.add_staff(11, "staff", chat_id=-100)
    assert desk.remove_staff(11) and desk.staff(11) is None
    assert not desk.remove_staff(11)
    with desk.service.store.session() as session:
        assert [(a.action, a.subject) for a in audit_entries(session)] == [("staff_remove", "11")]


def kefu(args: list[str], database_url: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}, "KEFU_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_the_commands(desk, tmp_path):
    url = desk.service.store.db.url.render_as_string(hide_password=False)
    exported = kefu(["customer", "export", CUSTOMER], url, tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["conversations"][0]["cases"][0]["waybill"] == "SH20261127"
    refused = kefu(["customer", "erase", CUSTOMER], url, tmp_path)  # no terminal to confirm on
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    erased = kefu(["customer", "erase", CUSTOMER, "--yes"], url, tmp_path)
    assert erased.returncode == 0 and erased.stdout.startswith("OK: erased 1 conversations"), erased.stderr
    assert json.loads(kefu(["customer", "export", CUSTOMER], url, tmp_path).stdout)["conversations"] == []
    desk.add_staff(11, "staff", chat_id=-100)
    removed = kefu(["staff", "remove", "11"], url, tmp_path)
    assert removed.returncode == 0 and removed.stdout.strip() == "OK: 11 removed"
    again = kefu(["staff", "remove", "11"], url, tmp_path)
    assert again.returncode == 2 and "11 is not staff" in again.stderr
