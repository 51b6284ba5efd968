"""Approved conversations as regression tests: a stored case's conversation saved by a supervisor
(bot/approved.py) and replayed through the engine, exactly, by the suite."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from bot.approved import APPROVED_DIR, NotApprovable, approved_test, save_approved
from bot.service import BackgroundRouter, Service
from bot.storage.engine import connect
from bot.storage.store import Store
from dialogs import dialogues
from dialogs.content import load_content
from dialogs.conversation import Inbound
from dialogs.engine import Engine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def router(content):
    return BackgroundRouter(content)


@pytest.fixture(scope="module")
def engine(content, router):
    return Engine(content, router)


def files() -> list[Path]:
    return sorted(APPROVED_DIR.glob("*.yaml"))


def test_there_are_approved_conversations():
    assert files(), f"no approved conversations in {APPROVED_DIR}"


@pytest.mark.parametrize("path", files(), ids=lambda p: p.stem)
def test_every_approved_conversation_is_still_answered_as_approved(engine, path):
    for conversation in dialogues.load([path]):
        result = dialogues.replay(engine, conversation)
        assert result.passed, "\n".join(result.failures + ["", *result.transcript])


def _service(content, engine, database_url) -> Service:
    return Service(content, engine, Store(connect(database_url), content.version, engine.zone), engine.router)


def _open_case(service: Service) -> str:
    for message in ["你好", "我的货被转给别的物流了，查不到", "13800138000", "12345678"]:
        turn = service.handle("telegram", "501", Inbound(text=message))
    service.handle("telegram", "501", Inbound(text="谢谢"))  # after the opening: not part of the test
    return next(e.data["number"] for e in turn.events if e.kind == "case_opened")


def test_a_saved_conversation_replays_and_fails_when_an_answer_changes(content, engine, sqlite_url, tmp_path):
    service = _service(content, engine, sqlite_url)
    number = _open_case(service)
    path = save_approved(service.store, number, "张主管", engine.zone, tmp_path)
    saved = yaml.safe_load(path.read_text(encoding="utf-8"))[0]
    assert saved["case_numbers"] == [number] and saved["about"] == "transfer"
    assert [t.get("say") for t in saved["turns"]] == ["你好", "我的货被转给别的物流了，查不到", "13800138000", "12345678"]
    assert "张主管" in saved["source"] and saved["end"] == {"cases": [{"category": "transfer"}]}
    assert dialogues.replay(engine, saved).passed

    # The same conversation against content whose transfer answer point was reworded: caught.
    folder = tmp_path / "content"
    shutil.copytree(ROOT / "scripts_yaml", folder)
    transfer = folder / "transfer.yaml"
    transfer.write_text(transfer.read_text(encoding="utf-8").replace("因系统无法查询该转货的详细情况", "系统查不到转货详情"),
                        encoding="utf-8")
    changed = Engine(load_content(folder), engine.router)
    result = dialogues.replay(changed, saved)
    assert not result.passed and result.failures[0].startswith("turn 2: replies differ from the approved ones")


def test_button_presses_are_replayed_by_their_value(content, engine, sqlite_url):
    service = _service(content, engine, sqlite_url)
    service.handle("telegram", "502", Inbound(text="/start"))
    service.handle("telegram", "502", Inbound(choice="menu:1"))  # 货物滞留
    service.handle("telegram", "502", Inbound(text="12345678"))
    turn = service.handle("telegram", "502", Inbound(text="13800138000"))
    number = next(e.data["number"] for e in turn.events if e.kind == "case_opened")
    test = approved_test(service.store, number, "张主管", engine.zone)
    assert test["turns"][1]["choice"] == "menu:1"
    assert dialogues.replay(engine, test).passed


def test_an_unknown_case_is_refused(content, engine, sqlite_url):
    service = _service(content, engine, sqlite_url)
    with pytest.raises(NotApprovable):
        approved_test(service.store, "KF-20261202-9999", "张主管", engine.zone)
