"""What kefu says to staff and supervisors in Telegram, as content (scripts_yaml/staff/telegram.yaml):
loaded and checked like the customers' texts, and filled by name."""

from __future__ import annotations

from pathlib import Path

from dialogs.render import render, unknown_names
from dialogs.schema import Strict
from dialogs.yamlfile import ContentError, Problem, parse_model, read_required

TELEGRAM_FILE = Path("staff") / "telegram.yaml"
# The names a staff text may use; each call fills those its text names.
NAMES = frozenset({"number", "who", "verb", "usage", "channel", "index", "text", "update", "user", "case", "error",
                   "stars", "reason", "chat"})


class Card(Strict):
    other_channel: str
    canned_title: str
    reply_hint: str
    forward_hint: str
    claim_button: str
    resolve_button: str
    escalate_button: str
    canned_button: str


class Headers(Strict):
    new_case: str
    case_updated: str
    human_requested: str
    escalated_here: str
    card: str
    claimed: str
    resolved: str
    escalated: str
    canned_sent: str
    canned_not_delivered: str
    remind: str
    overdue_escalated: str
    overdue_top: str


class Forwarded(Strict):
    message: str
    attachment: str
    human_without_case: str


class Notes(Strict):
    number_needed: str
    status_number_needed: str
    reply_other_channel: str
    reply_sent: str
    reply_failed: str
    canned_gone: str
    private_only: str
    train_pick: str
    no_training: str


class Alerts(Strict):
    low_rating: str
    low_reason: str
    dead_letter: str


class StaffTexts(Strict):
    customer_commands: dict[str, str]
    staff_commands: dict[str, str]
    help: str
    card: Card
    headers: Headers
    forwarded: Forwarded
    notes: Notes
    alerts: Alerts
    message_kinds: dict[str, str]


def say(template: str, **values: object) -> str:
    """A staff text filled with the values it names (the rest are left out)."""
    return render(template, {name: values.get(name, "") for name in NAMES})


def load_staff_texts(directory: Path) -> StaffTexts:
    """Reads and checks scripts_yaml/staff/telegram.yaml; ContentError names file, line and field."""
    doc = read_required(Path(directory) / TELEGRAM_FILE, "the Telegram staff texts")
    problems: list[Problem] = []
    texts = parse_model(doc, StaffTexts, problems)
    for where, template in _templates(doc.data):  # read from the file itself: reported beside missing fields
        unknown = unknown_names(template, NAMES)
        if unknown:
            problems.append(doc.problem(where, f"unknown name(s) {', '.join(unknown)} (known: {', '.join(sorted(NAMES))})"))
    if texts is not None:
        if "other" not in texts.message_kinds:
            problems.append(doc.problem(("message_kinds",), "needs 'other': the name of any kind not listed"))
    if problems:
        raise ContentError(problems)
    return texts


def _templates(data: object, path: tuple = ()):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _templates(value, path + (key,))
    elif isinstance(data, str):
        yield path, data
