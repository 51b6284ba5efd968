"""`kefu train` on standard input: whole sessions scored and stored; `kefu train --history`; `kefu eval-training`.
(Named test_train, not test_practice: pytest here imports test modules by basename, and
tests/dialogs/test_practice.py has that one.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from sqlalchemy import create_engine
from sqlmodel import Session, select

from bot.storage.tables import TrainingRow


def kefu(args: list[str], database_url: str, lines: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEFU_DATABASE_URL": database_url}
    result = subprocess.run([sys.executable, "-m", "bot", *args], input="".join(f"{l}\n" for l in lines or []),
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


GOOD = ["孙先生您好，非常抱歉，系统查不到转货后的详细情况，请您留下联系方式，我来联系外协窗口查询。",
        "好的，我已经记下了，查到后第一时间反馈给您。",
        "您放心，查到后我们会马上告诉您，您不用自己去联系外协公司。"]


def test_a_whole_piped_session_prints_the_customer_and_ends_with_the_score(sqlite_url):
    out = kefu(["train", "--category", "transfer", "--scenario", "1", "--trainee", "amy"], sqlite_url, GOOD).stdout
    lines = out.splitlines()
    assert re.fullmatch(r"score: \d+/100", lines[-1]) and lines[-1] == "score: 100/100"
    customer = [l for l in lines if l.startswith("客户: ")]
    assert customer[0] == "客户: 我的货你们转给别的物流了，现在查不到，窗口还让我自己去打那家的电话，你们什么意思？"
    assert customer[1].startswith("客户: 我电话13705912345")  # asked for a contact, the customer gives it
    assert len(customer) == 3 and out.count("本轮得分: ") == 3
    assert "手册的回答要点（手册 第四章 一、（四） 1、回答要点）: 您好，孙先生，因系统无法查询" in out
    assert "参考回答（草稿）: " in out

    with Session(create_engine(sqlite_url)) as db:
        row = db.exec(select(TrainingRow)).one()
    assert (row.trainee, row.category, row.scenario, row.score, row.finished) == ("amy", "transfer", 1, 100, True)
    assert [t["reply"] for t in row.turns] == GOOD and row.turns[1]["customer"].startswith("我电话")
    assert row.training_version.startswith("training+")


def test_a_polite_reply_that_sends_the_customer_elsewhere_fails(sqlite_url):
    lines = ["孙先生您好，给您添麻烦了，外协公司的电话是0591-8888888，您直接联系他们查会比较快，谢谢。", "好的。", "好的。"]
    out = kefu(["train", "--category", "transfer", "--scenario", "1", "--trainee", "bob"], sqlite_url, lines).stdout
    assert "客户: 又让我自己去找？" in out
    assert "✗ 禁止事项 · 让客户自己去找其他部门、中转窗口或外协公司" in out
    assert out.splitlines()[-1] == "score: 0/100"


def test_history_lists_sessions_per_trainee_and_a_session_left_early(sqlite_url):
    kefu(["train", "--category", "transfer", "--scenario", "1", "--trainee", "amy"], sqlite_url, GOOD)
    kefu(["train", "--category", "carrying", "--scenario", "2", "--trainee", "bob"], sqlite_url, ["你自己搬吧。"])
    amy = kefu(["train", "--history", "--trainee", "amy"], sqlite_url).stdout
    assert "amy  transfer #1  100/100" in amy and "bob" not in amy
    assert "amy: 1 次训练，平均 100.0，最高 100" in amy
    everyone = kefu(["train", "--history"], sqlite_url).stdout
    assert re.search(r"bob  carrying #2  \d+/100（未完成，1 轮）", everyone)


def test_eval_training_prints_the_measured_figures(sqlite_url):
    out = kefu(["eval-training"], sqlite_url).stdout
    assert "84 graded replies for 28 scenarios" in out
    assert "pairwise ranking accuracy: 84/84 (100.0 %)" in out
    assert "forbidden moves caught: 30/30 (100.0 %)" in out


def test_validate_checks_the_training_content_too(sqlite_url):
    out = kefu(["validate"], sqlite_url).stdout
    assert "training: 36 scenarios" in out


def test_an_unknown_category_is_refused_with_a_hint(sqlite_url):
    env = {**os.environ, "KEFU_DATABASE_URL": sqlite_url}
    result = subprocess.run([sys.executable, "-m", "bot", "train", "--category", "transfr", "--scenario", "1"],
                            input="", capture_output=True, text=True, env=env, timeout=120)
    flat = "".join(result.stderr.replace("│", "").split())  # typer draws the message in a box, wrapped
    assert result.returncode == 2 and "didyoumean'transfer'" in flat
