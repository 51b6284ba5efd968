"""Drafts to confirm, for supervisors: each draft of the content with how often customers saw it, the
confirmations and corrections supervisors store (who, when, why), and the YAML patch that carries
them into scripts_yaml/."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import yaml
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session

from bot.storage import queries
from bot.storage.tables import DraftReviewRow, aware, utcnow
from dialogs.content import Content, load_content
from dialogs.drafts import (CONFIRMED, CORRECTED, DEADLINE, ROLE, TEXT, Change, Draft, PatchConflict, apply_changes, drafts,
                            matcher)
from dialogs.render import template_problems

SEEN_DAYS = 30
PATCH_HEADER = """\
# kefu drafts patch: supervisors' confirmations and corrections of the content's drafts.
# Apply it with `kefu drafts apply PATH` (each change is checked against the file as it stands,
# then the content is validated; nothing is written unless all of it fits).
"""


class DraftError(Exception):
    """A review that cannot be stored, with what is wrong."""


@dataclass(frozen=True)
class Review:
    key: str
    was: str
    decision: str  # confirmed, corrected
    correction: str | None
    comment: str | None
    reviewer: str
    at: datetime


@dataclass(frozen=True)
class DraftLine:
    """One line of the drafts page: the draft, how often customers saw it, and the latest review."""

    draft: Draft
    seen: int | None  # bot messages of the last 30 days that show it; None: not countable (see Drafts.seen)
    review: Review | None
    stale: bool  # reviewed, but the text has changed since: the review is not about what is shipped now

    @property
    def status(self) -> str:
        """in the content: confirmed (the content records it), reviewed (stored, not yet applied), open."""
        if self.draft.confirmed is not None:
            return "confirmed"
        return "reviewed" if self.review is not None and not self.stale else "open"


class Drafts:
    """The drafts of the loaded content and the reviews stored in the database."""

    def __init__(self, db: DbEngine, content: Content, clock: Callable[[], datetime] | None = None):
        self.db = db
        self.content = content
        self.clock = clock or utcnow
        self._drafts = {d.key: d for d in drafts(content)}

    def all(self) -> list[Draft]:
        return list(self._drafts.values())

    def get(self, key: str) -> Draft:
        try:
            return self._drafts[key]
        except KeyError:
            raise DraftError(f"no draft '{key}'") from None

    def listing(self, days: int = SEEN_DAYS) -> list[DraftLine]:
        """Every draft with its count and latest review, in the content's order."""
        seen = self.seen(days)
        reviews = self.reviews()
        lines = []
        for draft in self._drafts.values():
            review = reviews.get(draft.key)
            lines.append(DraftLine(draft, seen.get(draft.key), review, review is not None and review.was != draft.value))
        return lines

    def seen(self, days: int = SEEN_DAYS) -> dict[str, int]:
        """How many messages sent to customers in the last `days` days show each text (a staff member's
        one-press answer point counts too). Messages do not record which text made them: each text's
        template is matched against what was sent (dialogs/drafts.py, matcher), among the messages of its
        own category or of none. Step actions, roles and deadlines go to staff, never to customers; a text
        with little fixed wording is not counted. Neither has an entry."""
        since = (self.clock() - timedelta(days=days)).astimezone(timezone.utc)  # SQLite compares UTC digits
        with Session(self.db) as session:
            sent = queries.texts_sent(session, since)
        categories = set(self.content.categories)
        counts: dict[str, int] = {}
        for draft in self._drafts.values():
            if draft.kind != TEXT:
                continue
            found = matcher(draft.value)
            if found is None:
                continue
            mine = draft.category if draft.category in categories else None
            counts[draft.key] = sum(n for text, category, n in sent if text and (
                mine is None or category in (None, mine) or category not in categories) and found.shows(text))
        return counts

    def reviews(self) -> dict[str, Review]:
        """The newest review of each draft."""
        with Session(self.db) as session:
            rows = queries.draft_reviews(session)
        return {row.key: _review(row) for row in rows}

    def history(self, key: str) -> list[Review]:
        """Every review of one draft, oldest first."""
        with Session(self.db) as session:
            rows = queries.draft_reviews(session, key)
        return [_review(row) for row in rows]

    def confirm(self, key: str, reviewer: str, comment: str | None = None) -> Review:
        """Stores a supervisor's confirmation of a draft as it stands."""
        return self._store(self.get(key), CONFIRMED, None, reviewer, comment)

    def correct(self, key: str, reviewer: str, correction: str, comment: str | None = None) -> Review:
        """Stores a supervisor's correction of a draft (checked: a role that exists, a positive number of
        hours, a text whose template is sound)."""
        draft = self.get(key)
        correction = correction.strip()
        if not correction:
            raise DraftError("the correction is empty")
        if draft.kind == ROLE and correction not in self.content.shared.roles:
            raise DraftError(f"no role '{correction}' (roles: {', '.join(self.content.shared.roles)})")
        if draft.kind == DEADLINE:
            try:
                hours = float(correction)
            except ValueError:
                raise DraftError(f"a deadline is a number of working hours, not {correction!r}") from None
            if not hours > 0:
                raise DraftError("a deadline must be more than 0 hours")
            correction = f"{hours:g}"
        if draft.field == "text":
            facts = None
            if draft.category in self.content.categories:
                facts = {f: fact.options for f, fact in self.content.categories[draft.category].facts.items()}
            problems = template_problems(correction, facts)
            if problems:
                raise DraftError("; ".join(problems))
        if correction == draft.value:
            return self._store(draft, CONFIRMED, None, reviewer, comment)
        return self._store(draft, CORRECTED, correction, reviewer, comment)

    def _store(self, draft: Draft, decision: str, correction: str | None, reviewer: str, comment: str | None) -> Review:
        if not reviewer.strip():
            raise DraftError("who reviewed it must be named")
        row = DraftReviewRow(key=draft.key, was=draft.value, decision=decision, correction=correction,
                             comment=(comment or "").strip() or None, reviewer=reviewer.strip(), at=self.clock())
        with Session(self.db, expire_on_commit=False) as session, session.begin():
            session.add(row)
        return _review(row)

    def unconfirmed(self) -> list[Draft]:
        """The drafts the content does not yet record as confirmed."""
        return [d for d in self._drafts.values() if d.confirmed is None]

    def patch(self) -> tuple[list[Change], list[str]]:
        """The changes to export: the newest review of each draft the content does not yet record as
        confirmed, made on the draft as it stands; and a line for each review left out (stale)."""
        changes, left_out = [], []
        for line in self.listing():
            review = line.review
            if review is None or line.draft.confirmed is not None:
                continue
            if line.stale:
                left_out.append(f"{line.draft.key}: reviewed by {review.reviewer} on {review.at:%Y-%m-%d}, "
                                "but the text has changed since: review it again")
                continue
            d = line.draft
            changes.append(Change(d.key, d.file, d.path, d.field, review.decision, review.was, review.correction,
                                  review.reviewer, aware(review.at).date(), review.comment))
        return changes, left_out

    def export(self) -> tuple[str, int, list[str]]:
        """The patch as YAML text, how many changes it holds, and the reviews left out."""
        changes, left_out = self.patch()
        return patch_text(changes, self.clock()), len(changes), left_out


def _review(row: DraftReviewRow) -> Review:
    return Review(row.key, row.was, row.decision, row.correction, row.comment, row.reviewer, aware(row.at))


class _PatchDumper(yaml.SafeDumper):
    """Texts of several lines as literal blocks, as in scripts_yaml/, so the patch reads like the content."""


_PatchDumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def patch_text(changes: list[Change], when: datetime) -> str:
    body = yaml.dump({"exported": when.strftime("%Y-%m-%d %H:%M UTC"), "changes": [c.as_json() for c in changes]},
                     Dumper=_PatchDumper, allow_unicode=True, sort_keys=False, width=100, default_flow_style=None)
    return PATCH_HEADER + body


def read_patch(text: str) -> list[Change]:
    data = yaml.safe_load(text) or {}
    try:
        return [Change.from_json(item) for item in data.get("changes") or []]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PatchConflict(f"not a kefu drafts patch: {exc}") from None


def apply_patch(text: str, folder: Path) -> tuple[int, list[str]]:
    """Writes a patch into a content folder: every change is checked against its file first, and the
    result is validated; on any problem nothing is written (PatchConflict, or ContentError with the
    validator's lines). Returns how many changes were applied, and the files written."""
    changes = read_patch(text)
    by_file: dict[str, list[Change]] = {}
    for change in changes:
        if Path(change.file).name != change.file or not (folder / change.file).is_file():
            raise PatchConflict(f"{change.key}: no file {change.file} in {folder}")
        by_file.setdefault(change.file, []).append(change)
    new = {name: apply_changes((folder / name).read_text(encoding="utf-8"), items) for name, items in by_file.items()}
    # Validated in a copy of the folder first, so a bad patch never leaves the content half-changed.
    with tempfile.TemporaryDirectory() as scratch:
        trial = Path(scratch) / "content"
        shutil.copytree(folder, trial)
        for name, source in new.items():
            (trial / name).write_text(source, encoding="utf-8")
        load_content(trial)
    for name, source in new.items():
        (folder / name).write_text(source, encoding="utf-8")
    return len(changes), sorted(new)

