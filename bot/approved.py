"""A reviewed conversation kept as a regression test: the customer's messages from the start of the
conversation to the turn that opened the case, with kefu's replies exactly as a supervisor approved
them. The suite replays each file in tests/data/approved/ through the engine (dialogs/dialogues.py,
at the times and with the case numbers of the original), so a change that alters an approved answer
fails until someone approves the new one."""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path

import yaml

from bot.storage import queries
from bot.storage.store import Store
from bot.storage.tables import aware, utcnow

APPROVED_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "approved"
# Turns the engine took no part in: kept in the transcript, not replayed.
NOT_ENGINE = {"relayed_to_staff", "attachment_received", "unsupported_message", "staff_command_refused", "slowed_down",
              "rating_requested", "send_failed"}


class NotApprovable(Exception):
    """The case cannot be kept as a regression test (no such case, or no engine turns before it)."""


def approved_test(store: Store, number: str, reviewer: str, zone: tzinfo) -> dict:
    """The case's conversation up to its opening, as a replayable conversation (the dialogues format)."""
    with store.reading() as session:
        case = queries.case_by_number(session, number)
        if case is None:
            raise NotApprovable(f"没有案件 {number}")
        messages, events = queries.until_case_opened(session, case)
        opened = [e.data for e in sorted(events, key=lambda e: e.id or 0) if e.kind == "case_opened"]
    skipped = {aware(e.at) for e in events if e.kind in NOT_ENGINE}
    turns: list[dict] = []
    for message in messages:
        at = aware(message.at)
        if message.direction == "in":
            if at in skipped:
                turns.append({})  # a placeholder: this message and its answer are not the engine's
                continue
            said = {"choice": message.choice} if message.choice is not None else {"say": message.text or ""}
            turns.append({**said, "at": f"{at.astimezone(zone):%Y-%m-%d %H:%M:%S}", "expect": {"replies": []}})
        elif turns and turns[-1] and message.staff_id is None:
            turns[-1]["expect"]["replies"].append(message.text)
    turns = [t for t in turns if t]
    if not turns:
        raise NotApprovable(f"案件 {number} 之前没有可以重放的对话")
    return {
        "id": f"approved-{number}",
        "source": f"approved by {reviewer} on {utcnow().astimezone(zone):%Y-%m-%d} (case {number})",
        "patterns": ["approved"],
        "about": case.category,
        "at": turns[0]["at"],
        "case_numbers": [o["number"] for o in opened],
        "turns": turns,
        "end": {"cases": [{"category": o["category"]} for o in opened]},
    }


def approved_yaml(store: Store, number: str, reviewer: str, zone: tzinfo) -> str:
    """The approved conversation as the file tests/data/approved/<number>.yaml holds it."""
    test = approved_test(store, number, reviewer, zone)
    header = (f"# {test['source']}: kefu's replies as approved. Replayed by tests/bot/test_approved.py;\n"
              "# if kefu now answers differently, review the new answers and approve the case again.\n")
    return header + yaml.safe_dump([test], allow_unicode=True, sort_keys=False, width=120)


def save_approved(store: Store, number: str, reviewer: str, zone: tzinfo, folder: Path = APPROVED_DIR) -> Path:
    """Writes the approved conversation to folder/<number>.yaml (replacing an earlier approval)."""
    text = approved_yaml(store, number, reviewer, zone)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{number}.yaml"
    path.write_text(text, encoding="utf-8")
    return path
