"""`kefu chat` on standard input: the golden conversations, stored message by message; and a restart."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session, select

from bot.store import CaseRow, ConversationRow, MessageRow
from golden import golden_params, where


def kefu_chat(lines: list[str], user: str, database_url: str) -> str:
    """Runs the real command in a new process, one customer message per line."""
    env = {**os.environ, "KEFU_DATABASE_URL": database_url}
    result = subprocess.run([sys.executable, "-m", "bot", "chat", "--user", user], input="".join(f"{l}\n" for l in lines),
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def replies_per_turn(output: str) -> list[str]:
    """Splits the transcript into the bot's replies after each customer line."""
    return [chunk.split("\n", 1)[1] if "\n" in chunk else "" for chunk in output.split("客户: ")[1:]]


@pytest.mark.parametrize("golden", golden_params())
def test_golden_conversation_through_kefu_chat(golden, sqlite_url):
    lines = [str(t["say"]) for t in golden["turns"]]
    turns = replies_per_turn(kefu_chat(lines, "golden", sqlite_url))
    assert len(turns) == len(lines)
    for turn, shown in zip(golden["turns"], turns):
        for fragment in turn.get("expect", []):
            assert fragment in shown, f"after {turn['say']!r}"

    with Session(create_engine(sqlite_url)) as session:
        conv = session.exec(select(ConversationRow)).one()
        assert where(conv.category, conv.state) == golden["turns"][-1]["state"]  # every golden conversation ends with one
        messages = session.exec(select(MessageRow).order_by(MessageRow.id)).all()
        assert [m.text for m in messages if m.direction == "in"] == lines  # exactly as typed
        shown_out = [m.text for m in messages if m.direction == "out"]
        assert len(shown_out) == sum(t.count("客服: ") for t in turns)
        cases = session.exec(select(CaseRow)).all()
        expected = golden.get("case")
        assert len(cases) == (1 if expected else 0)
        if expected:
            case = cases[0]
            assert (case.category, case.step_role, case.step, case.status) == (expected["category"], expected["role"], 0, "open")
            assert (case.waybill, case.contact) == (expected["waybill"], expected["contact"])
            assert case.number.startswith("KF-") and case.number in "".join(turns)
            assert case.content_version


def test_stop_and_start_again_continues_the_conversation(sqlite_url):
    first = kefu_chat(["你好", "货物滞留、迟迟不发", "12345678"], "restart", sqlite_url)
    assert "请留下您的联系电话" in first
    second = kefu_chat(["13800138000"], "restart", sqlite_url)
    assert "欢迎联系" not in second  # not a new conversation
    assert "已为您登记" in second
    other_user = kefu_chat(["13800138000"], "someone-else", sqlite_url)
    assert "欢迎联系" in other_user and "已为您登记" not in other_user
    with Session(create_engine(sqlite_url)) as session:
        case = session.exec(select(CaseRow)).one()
        assert (case.category, case.waybill, case.contact) == ("stranded", "12345678", "13800138000")
