"""Training in the terminal: kefu plays a scenario's customer, the trainee answers (typed, or one reply
per line on stdin), each reply is scored, and the session is stored; and a trainee's history."""

from __future__ import annotations

import io
import random
import sys
from datetime import tzinfo
from typing import TextIO

from bot.chat import read_line, safe
from bot.storage import queries
from bot.storage.store import Store
from bot.storage.tables import StaffModeRow, TrainingRow, aware, utcnow
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
    return read_line(source, interactive, out, "您（客服）: ", "学员: ")


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
    row = _row(trainee, session, started)
    if row is None:
        return
    with store.writing() as db:
        db.add(row)


def _row(trainee: str, session: Session, started) -> TrainingRow | None:
    """The session as it is kept; None when nothing was answered (nothing to keep)."""
    if not session.replies:
        return None
    turns = [{"customer": customer, "reply": reply, "score": score.total,
              "checks": [{"kind": c.kind, "id": c.id, "passed": c.passed, "reason": c.reason} for c in score.checks]}
             for customer, reply, score in zip(session.customer, session.replies, session.scores)]
    return TrainingRow(trainee=trainee, category=session.category, scenario=session.number,
                       training_version=session.training.version, score=session.score.total,
                       finished=session.finished, forbidden=session.score.forbidden, turns=turns,
                       started_at=started, finished_at=utcnow())


def history(store: Store, trainee: str | None, zone: tzinfo, out: TextIO = sys.stdout, latest: int | None = None) -> int:
    """Prints the stored sessions (one trainee's, or everyone's; only the `latest` ones when given), oldest
    first, and each trainee's count, mean and best over all of them; returns how many sessions there are."""
    with store.reading() as session:
        rows = queries.training_history(session, trainee)
    if not rows:
        return 0
    if latest is not None and len(rows) > latest:
        print(f"（共 {len(rows)} 次训练，显示最近 {latest} 次）", file=out)
    for row in rows[-latest:] if latest else rows:
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


# -- training in a chat (Telegram /train) ----------------------------------------------------------------

MODE = "train"
RANDOM = "random"


class Practice:
    """Training in a chat: the session lives in the trainee's StaffModeRow (the replies so far; the
    scores are worked out again from them, the same every time), and is stored as a TrainingRow in
    the same transaction that ends it."""

    def __init__(self, store: Store, content: Content, training: Training):
        self.store, self.content, self.training = store, content, training

    def choices(self) -> list[tuple[str, str]]:
        """(label, category id) for each category with scenarios, then a random one."""
        ids = sorted(self.training.scenarios)
        return [(self.content.categories[c].name if c in self.content.categories else c, c) for c in ids] + [("随机", RANDOM)]

    def active(self, staff_id: int) -> bool:
        return self.store.staff_mode(staff_id) == MODE

    def start(self, staff_id: int, trainee: str, category: str | None, scenario: int | None,
              rng: random.Random | None = None) -> str:
        """Starts a session (ending any other mode the staff member was in); returns the opening."""
        if category == RANDOM:
            category = None
        if category is not None and category not in self.training.scenarios:
            raise ValueError(f"没有“{category}”的训练场景")
        if scenario is not None and (category is None or not 1 <= scenario <= len(self.training.scenarios[category])):
            raise ValueError("没有这个场景编号")
        category, number = pick(self.training, category, scenario, rng or random.Random())
        with self.store.writing() as db:
            row = db.get(StaffModeRow, staff_id) or StaffModeRow(telegram_id=staff_id, mode=MODE)
            row.mode, row.started_at = MODE, utcnow()
            row.data = {"trainee": trainee, "category": category, "number": number, "replies": []}
            db.add(row)
        session = Session(self.training, category, number)
        scenario_ = session.scenario
        name = self.content.categories[category].name if category in self.content.categories else category
        return (f"训练：{name}（{category}）第 {number} 个场景，客户：{scenario_.customer}（{MOODS[scenario_.mood]}），"
                f"共 {session.turns} 轮。请像对真实客户一样回复；发 /quit 结束。\n客户: {scenario_.opening.text}")

    def take(self, staff_id: int, reply: str) -> tuple[str, bool]:
        """Scores one reply; returns what to show (the score, then the customer's next line or the
        end) and whether the session is over. KeyError when none is open."""
        with self.store.reading() as db:
            row = db.get(StaffModeRow, staff_id)
            if row is None or row.mode != MODE:
                raise KeyError(staff_id)
            data, started = dict(row.data), row.started_at
        session = self._replayed(data)
        if reply.strip() in QUIT_WORDS:
            return self._end(staff_id, data, session, started), True
        out = io.StringIO()
        score, line = session.answer(reply)
        show_score(score, out)
        if line is not None:
            print(f"参考回答（草稿）: {session.scenario.model_answer.text}", file=out)
            print(f"客户: {line}", file=out)
            with self.store.writing() as db:
                row = db.get(StaffModeRow, staff_id)
                row.data = {**data, "replies": [*data["replies"], reply]}
                db.add(row)
            return out.getvalue().rstrip(), False
        return out.getvalue() + self._end(staff_id, data, session, started), True

    def stop(self, staff_id: int) -> str:
        with self.store.reading() as db:
            row = db.get(StaffModeRow, staff_id)
            if row is None or row.mode != MODE:
                raise KeyError(staff_id)
            data, started = dict(row.data), row.started_at
        return self._end(staff_id, data, self._replayed(data), started)

    def _replayed(self, data: dict) -> Session:
        session = Session(self.training, data["category"], data["number"])
        for earlier in data["replies"]:
            session.answer(earlier)
        return session

    def _end(self, staff_id: int, data: dict, session: Session, started) -> str:
        """The end of a session: its score and the model answer; stored, and the mode left, at once."""
        out = io.StringIO()
        _finish(session, out, self.content)
        with self.store.writing() as db:
            row = _row(data["trainee"], session, aware(started))
            if row is not None:
                db.add(row)
            mode = db.get(StaffModeRow, staff_id)
            if mode is not None:
                db.delete(mode)
        return out.getvalue().rstrip()
