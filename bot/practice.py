"""Training in the terminal: kefu plays a scenario's customer, the trainee answers (typed, or one reply
per line on stdin), each reply is scored, and the session is stored; and a trainee's history."""

from __future__ import annotations

import random
import sys
from datetime import tzinfo
from typing import TextIO

from sqlmodel import select

from bot.chat import safe
from bot.store import Store, TrainingRow, aware, utcnow
from dialogs.content import Content
from dialogs.practice import Score, Session, Training
from dialogs.render import render, template_values

MOODS = {"calm": "平静", "angry": "生气", "confused": "不太明白", "hurry": "赶时间"}
KINDS = {"point": "回答要点", "move": "处理方式", "courtesy": "礼貌用语", "forbidden": "禁止事项"}
QUIT_WORDS = {"/quit", "/exit"}


def pick(training: Training, category: str | None, scenario: int | None, rng: random.Random) -> tuple[str, int]:
    """The category and scenario number to practise: as given, or drawn at random."""
    category = category or rng.choice(sorted(training.scenarios))
    return category, scenario or rng.randint(1, len(training.scenarios[category]))


def show_score(score: Score, out: TextIO, label: str = "本轮得分") -> None:
    """Prints the score and every check, passed (✓) or missed (✗), with its reason."""
    print(f"{label}: {score.total}/100", file=out)
    for check in score.checks:
        if check.kind == "forbidden" and check.passed:
            continue  # only the ones committed are worth a line
        mark = "✓" if check.passed else "✗"
        print(f"  {mark} {KINDS[check.kind]} · {check.label}：{safe(check.reason)}", file=out)
    if not score.forbidden:
        print(f"  ✓ {KINDS['forbidden']} · 没有违反手册的禁止事项", file=out)


def show_model(content: Content, session: Session, out: TextIO) -> None:
    """Prints the manual's answer points for the category (rendered for this customer) and the scenario's model answer."""
    category = content.categories.get(session.category)
    values = template_values(session.scenario.customer)
    if category is not None:
        for text in category.answer_points.values():
            origin = f"手册 {text.source}" if text.provenance.value == "manual" else "草稿"
            print(f"手册的回答要点（{origin}）: {render(text.text, values)}", file=out)
    print(f"参考回答（草稿）: {session.scenario.model_answer.text}", file=out)


def run_training(content: Content, training: Training, store: Store, trainee: str, category: str, number: int,
                 source: TextIO = sys.stdin, out: TextIO = sys.stdout) -> Session:
    """Plays one session to its end (or the end of input, or /quit); stores it; returns it."""
    session = Session(training, category, number)
    scenario = session.scenario
    name = content.categories[category].name if category in content.categories else category
    print(f"训练：{name}（{category}）第 {number} 个场景，客户：{scenario.customer}（{MOODS[scenario.mood]}），"
          f"共 {session.turns} 轮。", file=out)
    interactive = source.isatty()
    if not interactive and hasattr(source, "reconfigure"):
        source.reconfigure(errors="replace")
    started = utcnow()
    line: str | None = scenario.opening.text
    while line is not None:
        print(f"客户: {line}", file=out)
        reply = _read(source, interactive, out)
        if reply is None or reply.strip() in QUIT_WORDS:
            break
        line = _answer(session, reply, out)
    _finish(session, out, content)
    _store(store, trainee, session, started)
    return session


def _read(source: TextIO, interactive: bool, out: TextIO) -> str | None:
    if interactive:
        try:
            return input("您（客服）: ")
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            return None
    text = source.readline()
    if not text:
        return None
    text = text.removesuffix("\n").removesuffix("\r")
    print(f"学员: {safe(text)}", file=out)
    return text


def _answer(session: Session, reply: str, out: TextIO) -> str | None:
    score, line = session.answer(reply)
    show_score(score, out)
    if line is not None:
        print(f"参考回答（草稿）: {session.scenario.model_answer.text}", file=out)
    return line


def _finish(session: Session, out: TextIO, content: Content) -> None:
    print("—— 训练结束 ——", file=out)
    if session.scores:
        show_score(session.score, out, label="全程得分")
    show_model(content, session, out)
    print(f"score: {session.score.total}/100", file=out)
    out.flush()


def _store(store: Store, trainee: str, session: Session, started) -> None:
    if not session.replies:
        return  # nothing answered: nothing to keep
    turns = [{"customer": customer, "reply": reply, "score": score.total,
              "checks": [{"kind": c.kind, "id": c.id, "passed": c.passed, "reason": c.reason} for c in score.checks]}
             for customer, reply, score in zip(session.customer, session.replies, session.scores)]
    with store.session() as db, db.begin():
        db.add(TrainingRow(trainee=trainee, category=session.category, scenario=session.number,
                           training_version=session.training.version, score=session.score.total,
                           finished=session.finished, forbidden=session.score.forbidden, turns=turns,
                           started_at=started, finished_at=utcnow()))


def history(store: Store, trainee: str | None, zone: tzinfo, out: TextIO = sys.stdout) -> int:
    """Prints the stored sessions (one trainee's, or everyone's), oldest first, and each trainee's mean; returns how many."""
    with store.session() as db:
        query = select(TrainingRow).order_by(TrainingRow.id)
        if trainee is not None:
            query = query.where(TrainingRow.trainee == trainee)
        rows = db.exec(query).all()
    if not rows:
        print(f"kefu: no training sessions{f' for {trainee}' if trainee else ''}", file=sys.stderr)
        return 0
    for row in rows:
        when = aware(row.finished_at).astimezone(zone).strftime("%Y-%m-%d %H:%M%z")
        when = f"{when[:-2]}:{when[-2:]}"
        note = "" if row.finished else f"（未完成，{len(row.turns)} 轮）"
        bad = f"  违反：{', '.join(row.forbidden)}" if row.forbidden else ""
        print(f"{when}  {safe(row.trainee)}  {row.category} #{row.scenario}  {row.score}/100{note}{bad}", file=out)
    by_trainee: dict[str, list[int]] = {}
    for row in rows:
        by_trainee.setdefault(row.trainee, []).append(row.score)
    for name, scores in sorted(by_trainee.items()):
        print(f"{safe(name)}: {len(scores)} 次训练，平均 {sum(scores) / len(scores):.1f}，最高 {max(scores)}", file=out)
    return len(rows)


def choose_category(training: Training, content: Content, out: TextIO = sys.stdout) -> str | None:
    """Asks the trainee at the terminal which category to practise; None: a random one."""
    ids = sorted(training.scenarios)
    for i, cid in enumerate(ids, start=1):
        name = content.categories[cid].name if cid in content.categories else cid
        print(f"  {i}. {name}（{cid}）", file=out)
    while True:
        try:
            answer = input("选择类别（数字或 id，直接回车随机）: ").strip()
        except (EOFError, KeyboardInterrupt):
            return None
        if not answer:
            return None
        if answer.isdigit() and 1 <= int(answer) <= len(ids):
            return ids[int(answer) - 1]
        if answer in ids:
            return answer
        print("没有这个类别，请重新输入。", file=out)
