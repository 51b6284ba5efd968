"""Drafts to confirm on a real database: how often customers saw each text, supervisors' confirmations
and corrections, and the YAML patch that carries them into the content, which the validator accepts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.casework import Casework
from bot.config import Settings
from bot.drafts import DraftError, Drafts, apply_patch, read_patch
from bot.service import Service
from bot.storage.tables import CaseRow, MessageRow, aware
from dialogs.content import DEFAULT_DIR, ContentError, load_content
from dialogs.conversation import Inbound
from dialogs.drafts import PatchConflict, drafts

DAMAGED = ["发错货、货物破损或短少", "66668888", "13900001111", "1", "外箱破损，电脑屏幕碎了", "2"]
GREETING = "shared.yaml:texts.greeting.text"
DAMAGE_WHAT = "wrong_or_damaged.yaml:facts.what.prompt.text"
CLAIMS_WHAT = "claims.yaml:facts.what.prompt.text"  # the same words as DAMAGE_WHAT, in another category


@pytest.fixture
def service(database_url):
    service = Service.from_settings(Settings(database_url=database_url))
    for line in DAMAGED:
        service.receive("console", "a", Inbound(text=line))
    for line in ["货物滞留", "12345678", "13800138000"]:
        service.receive("console", "b", Inbound(text=line))
    return service


def test_seen_counts_the_bot_messages_that_show_each_text(service):
    desk = Drafts(service.store.db, service.content)
    seen = desk.seen()
    assert seen[GREETING] == 2  # both customers were greeted
    assert seen["wrong_or_damaged.yaml:answer_points.reply.text"] == 1
    assert (seen[DAMAGE_WHAT], seen[CLAIMS_WHAT]) == (1, 0)  # same words: counted for the category that said them
    assert seen["shared.yaml:texts.case_opened.text"] == 2
    assert seen["claims.yaml:closing.text"] == 0
    assert "claims.yaml:handling.0.deadline_hours" not in seen  # never sent as such


def test_seen_counts_the_last_30_days_and_answer_points_staff_sent(service):
    damage = "wrong_or_damaged.yaml:answer_points.reply.text"
    before = Drafts(service.store.db, service.content).seen()[damage]
    desk = Casework(service)
    with service.store.session() as session:
        number = session.exec(select(CaseRow).where(CaseRow.category == "wrong_or_damaged")).one().number
    desk.reply(number, 7, desk.card(number).canned[0])  # the one-press answer point a staff member sends
    with service.store.session() as session, session.begin():
        first = session.exec(select(MessageRow).where(MessageRow.direction == "out").order_by(MessageRow.id)).first()
        first.at = first.at - timedelta(days=31)  # the first customer's greeting, a month ago
        session.add(first)
    seen = Drafts(service.store.db, service.content).seen()
    assert (seen[GREETING], seen[damage]) == (1, before + 1)
    assert "claims.yaml:handling.0.action.text" not in seen  # staff read the steps; customers never see them


def test_confirmations_and_corrections_are_stored_with_who_and_when_and_shown_beside_the_text(service):
    with service.store.session() as session:
        moment = aware(session.exec(select(MessageRow)).first().at)
    desk = Drafts(service.store.db, service.content, clock=lambda: moment + timedelta(hours=1))
    desk.confirm(GREETING, "王主管", "可以")
    desk.correct("claims.yaml:handling.0.deadline_hours", "王主管", "8")
    review = desk.correct(DAMAGE_WHAT, "李经理", "请问货物出了什么问题？", "更口语")
    assert (review.decision, review.reviewer, review.comment, review.was) == ("corrected", "李经理", "更口语", "请问货物出现了什么问题？")
    lines = {line.draft.key: line for line in desk.listing()}
    greeting = lines[GREETING]
    assert (greeting.status, greeting.review.decision, greeting.review.reviewer, greeting.review.comment) == ("reviewed", "confirmed", "王主管", "可以")
    assert greeting.review.at.replace(microsecond=0) == (moment + timedelta(hours=1)).replace(microsecond=0)
    assert lines["claims.yaml:handling.0.deadline_hours"].review.correction == "8"
    assert lines[CLAIMS_WHAT].status == "open"
    assert [r.decision for r in desk.history(GREETING)] == ["confirmed"]
    with pytest.raises(DraftError, match="no role 'boss'"):
        desk.correct("claims.yaml:handling.0.role", "王主管", "boss")
    with pytest.raises(DraftError, match="more than 0"):
        desk.correct("claims.yaml:handling.0.deadline_hours", "王主管", "0")
    with pytest.raises(DraftError, match="unknown name 'nope'"):
        desk.correct(GREETING, "王主管", "{{ nope }}")
    with pytest.raises(DraftError, match="facts.amount, which this category does not collect"):
        desk.correct(DAMAGE_WHAT, "王主管", "{{ facts.amount }}")
    with pytest.raises(DraftError, match="no draft"):
        desk.confirm("shared.yaml:texts.nothing.text", "王主管")


def test_exported_patch_applies_validates_and_marks_the_drafts_confirmed(service, tmp_path):
    desk = Drafts(service.store.db, service.content)
    desk.confirm(GREETING, "王主管", "可以")
    desk.correct("claims.yaml:handling.0.deadline_hours", "王主管", "8")
    desk.correct("claims.yaml:handling.1.role", "王主管", "regional_cs")
    desk.correct("shared.yaml:roles.branch_manager.doing", "王主管", "正在亲自协调")
    desk.correct("claims.yaml:answer_points.process.text", "李经理", "处理流程：\n1. 登记；\n2. 调查。", "简化")
    text, count, left_out = desk.export()
    assert (count, left_out) == (5, [])
    assert [c.key for c in read_patch(text)][0] == GREETING
    folder = tmp_path / "content"
    shutil.copytree(DEFAULT_DIR, folder)
    assert apply_patch(text, folder) == (5, ["claims.yaml", "shared.yaml"])
    patched = load_content(folder)  # the validator accepts it
    claims = patched.categories["claims"]
    assert (claims.handling[0].deadline_hours, claims.handling[1].role) == (8, "regional_cs")
    assert claims.answer_points["process"].text == "处理流程：\n1. 登记；\n2. 调查。"
    assert claims.answer_points["process"].confirmed.was.startswith("接下来的处理流程是")
    assert patched.shared.texts.greeting.confirmed.by == "王主管" and patched.shared.texts.greeting.confirmed.comment == "可以"
    assert patched.shared.roles["branch_manager"].doing == "正在亲自协调"
    after = Drafts(service.store.db, patched)
    assert len(after.unconfirmed()) == len(desk.unconfirmed()) - 5
    statuses = {line.draft.key: line.status for line in after.listing()}
    assert statuses[GREETING] == statuses["claims.yaml:answer_points.process.text"] == "confirmed"
    assert after.export()[1] == 0  # nothing left to carry over


def test_a_patch_that_does_not_fit_writes_nothing(service, tmp_path):
    desk = Drafts(service.store.db, service.content)
    desk.correct(GREETING, "王主管", "您好！")
    desk.confirm("claims.yaml:closing.text", "王主管")
    text, _, _ = desk.export()
    folder = tmp_path / "content"
    shutil.copytree(DEFAULT_DIR, folder)
    shared = (folder / "shared.yaml").read_text(encoding="utf-8").replace("您好，欢迎联系盛辉物流客服！", "您好，欢迎您！")
    (folder / "shared.yaml").write_text(shared, encoding="utf-8")
    claims = (folder / "claims.yaml").read_text(encoding="utf-8")
    with pytest.raises(PatchConflict, match="shared.yaml:texts.greeting.text"):
        apply_patch(text, folder)
    assert (folder / "claims.yaml").read_text(encoding="utf-8") == claims  # not even the change that fitted
    # A correction edited by hand into something the validator refuses: nothing written either.
    shutil.copy(DEFAULT_DIR / "shared.yaml", folder / "shared.yaml")
    with pytest.raises(ContentError):
        apply_patch(text.replace("value: 您好！", "value: '{{ nope }}'"), folder)
    assert (folder / "shared.yaml").read_text(encoding="utf-8") == (DEFAULT_DIR / "shared.yaml").read_text(encoding="utf-8")


def test_a_stale_review_is_left_out_of_the_patch(service, tmp_path):
    desk = Drafts(service.store.db, service.content)
    desk.confirm(GREETING, "王主管")
    folder = tmp_path / "content"
    shutil.copytree(DEFAULT_DIR, folder)
    shared = (folder / "shared.yaml").read_text(encoding="utf-8").replace("您好，欢迎联系盛辉物流客服！", "您好，欢迎您！")
    (folder / "shared.yaml").write_text(shared, encoding="utf-8")
    later = Drafts(service.store.db, load_content(folder))
    line = next(line for line in later.listing() if line.draft.key == GREETING)
    assert (line.stale, line.status) == (True, "open")
    _, count, left_out = later.export()
    assert count == 0 and left_out[0].startswith(f"{GREETING}: reviewed by 王主管")


def kefu(*args: str, database_url: str | None = None, content: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if database_url:
        env["KEFU_DATABASE_URL"] = database_url
    if content:
        env["KEFU_CONTENT_DIR"] = content
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_confirm_export_apply_and_validate_drafts(sqlite_url, tmp_path):
    folder = tmp_path / "content"
    shutil.copytree(DEFAULT_DIR, folder)
    before = kefu("validate", "--drafts", content=str(folder))
    assert before.returncode == 0, before.stderr
    total = len(drafts(load_content(folder)))
    assert f"drafts: {total} of {total} still unconfirmed" in before.stdout
    Service.from_settings(Settings(database_url=sqlite_url))  # makes the database
    done = kefu("drafts", "confirm", GREETING, "--by", "王主管", "--comment", "可以", database_url=sqlite_url, content=str(folder))
    assert done.returncode == 0 and f"OK: {GREETING} confirmed by 王主管" in done.stdout, done.stderr
    listed = kefu("drafts", "list", "--status", "reviewed", database_url=sqlite_url, content=str(folder))
    [line] = listed.stdout.splitlines()
    columns = line.split("\t")
    assert columns[:4] == [GREETING, "text", "texts.greeting", "0"] and columns[4].startswith("确认 王主管 ")
    assert columns[4].endswith("：可以") and columns[5] == "您好，欢迎联系盛辉物流客服！我是在线客服，很高兴为您服务。"
    patch = tmp_path / "patch.yaml"
    exported = kefu("drafts", "export", "--output", str(patch), database_url=sqlite_url, content=str(folder))
    assert exported.returncode == 0 and "OK: 1 change(s)" in exported.stdout, exported.stderr
    applied = kefu("drafts", "apply", str(patch), "--content", str(folder))
    assert applied.returncode == 0 and "OK: 1 change(s) applied to shared.yaml" in applied.stdout, applied.stderr
    after = kefu("validate", "--drafts", content=str(folder))
    assert after.returncode == 0 and f"drafts: {total - 1} of {total} still unconfirmed" in after.stdout
    assert GREETING not in after.stdout and "shared.yaml:texts.greeting_plain.text" in after.stdout
    again = kefu("drafts", "apply", str(patch), "--content", str(folder))  # already applied: the file has its word
    assert again.returncode == 0, again.stderr
