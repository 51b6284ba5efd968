"""`kefu chat` on standard input: the golden conversations, stored message by message; and a restart."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session, select

from bot.storage.tables import CaseRow, ConversationRow, MessageRow
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


def test_a_farewell_ends_the_chat_after_kefu_answers_it(sqlite_url):
    shown = kefu_chat(["帮助", "再见", "货物滞留、迟迟不发"], "bye", sqlite_url)
    assert "祝您生活愉快" in shown and "请提供您的运单号" not in shown  # nothing read after 再见
    shown = kefu_chat(["帮助", "/quit", "货物滞留、迟迟不发"], "quit", sqlite_url)
    assert "请提供您的运单号" not in shown
    with Session(create_engine(sqlite_url)) as session:
        said = [m.text for m in session.exec(select(MessageRow).where(MessageRow.direction == "in"))]
    assert said == ["帮助", "再见", "帮助"]  # /quit is not a message to kefu


def test_terminal_control_characters_a_customer_typed_are_shown_escaped(sqlite_url):
    typed = "\x1b[2J\x1b]0;pwned\x07货\u202e单"
    shown = kefu_chat([typed], "esc", sqlite_url)
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "客户: \\x1b[2J\\x1b]0;pwned\\x07货\\u202e单" in shown
    with Session(create_engine(sqlite_url)) as session:  # stored exactly as typed all the same
        assert session.exec(select(MessageRow).where(MessageRow.direction == "in")).one().text == typed


def test_bytes_that_are_not_utf8_do_not_stop_the_chat(sqlite_url):
    env = {**os.environ, "KEFU_DATABASE_URL": sqlite_url}
    result = subprocess.run([sys.executable, "-m", "bot", "chat", "--user", "u8"], input=b"\xff\xfe\xc3\x28 bad\n\xe5\xb8\xae\xe5\x8a\xa9\n",
                            capture_output=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert "使用说明" in result.stdout.decode()  # the line after the bad one was handled


class Terminal:
    """kefu chat in a pseudo-terminal, as a person runs it."""

    def __init__(self, database_url: str):
        import pty

        self.master, slave = pty.openpty()
        env = {**os.environ, "KEFU_DATABASE_URL": database_url, "TERM": "xterm"}
        self.process = subprocess.Popen([sys.executable, "-m", "bot", "chat", "--user", "tty"], stdin=slave,
                                        stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.screen = b""

    def wait_for(self, fragment: str, times: int = 1, timeout: float = 60) -> None:
        import select as poll
        import time

        deadline = time.monotonic() + timeout
        while self.screen.count(fragment.encode()) < times:
            ready, _, _ = poll.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"{fragment!r} not shown; screen: {self.screen.decode(errors='replace')[-500:]}")
            try:
                self.screen += os.read(self.master, 65536)
            except OSError:  # the chat ended and closed the terminal
                raise AssertionError(f"{fragment!r} not shown before the end")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> int:
        try:
            return self.process.wait(timeout=30)
        finally:
            os.close(self.master)


def test_the_terminal_chat_edits_lines_and_ends_on_ctrl_d(sqlite_url):
    terminal = Terminal(sqlite_url)
    terminal.wait_for("您: ")
    terminal.type("助\x1b[D帮\r")  # left arrow: readline moves the cursor instead of inserting ^[[D
    terminal.wait_for("使用说明")
    terminal.wait_for("您: ", times=2)  # keys typed before the prompt would reach the terminal, not readline
    terminal.type("\x04")  # Ctrl-D
    assert terminal.close() == 0
    with Session(create_engine(sqlite_url)) as session:
        said = [m.text for m in session.exec(select(MessageRow).where(MessageRow.direction == "in"))]
    assert said == ["/start", "帮助"]


def test_the_terminal_chat_ends_after_a_farewell(sqlite_url):
    terminal = Terminal(sqlite_url)
    terminal.wait_for("您: ")
    terminal.type("再见\r")
    terminal.wait_for("祝您生活愉快")
    assert terminal.close() == 0
