"""Drafts to confirm (/drafts): every text, step role and deadline the content wrote itself, with how often
customers saw it in the last 30 days and the supervisors' word on it; a supervisor confirms or corrects
each through bot/drafts.py (stored with who and when), and downloads the YAML patch that carries the
reviews into scripts_yaml/ (/drafts/patch.yaml). Supervisors and admins only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.drafts import DraftError, DraftLine, Drafts
from bot.supervision import SEE_ALL
from bot.web import auth
from bot.web.templating import page
from dialogs.drafts import CONFIRMED, CORRECTED

# What the page calls each draft's standing, in the order of its filter.
UNCONFIRMED, STALE = "unconfirmed", "stale"
STATUS_NAMES = {UNCONFIRMED: "待确认", CONFIRMED: "已确认", CORRECTED: "已修改", STALE: "原文已变，需重新审核"}
KIND_NAMES = {"text": "话术", "action": "处理方式", "role": "处理角色", "deadline": "期限（工作小时）"}
GENERAL = "general"  # the filter's name for drafts of no category (shared.yaml, other.yaml)


@dataclass(frozen=True)
class Word:
    """The supervisors' word on a draft as the page shows it: where it is kept, by whom, when."""

    status: str  # unconfirmed, confirmed, corrected, stale
    by: str | None = None
    at: date | datetime | None = None
    comment: str | None = None
    correction: str | None = None  # a stored correction not yet in the content
    was: str | None = None  # the draft a correction in the content replaced
    in_content: bool = False  # the content records it; else stored, waiting for the patch


def word(line: DraftLine) -> Word:
    """The draft's standing: recorded in the content, else the newest stored review, else none."""
    if line.draft.confirmed is not None:
        c = line.draft.confirmed
        return Word(CORRECTED if c.was is not None else CONFIRMED, c.by, c.at, c.comment, was=c.was, in_content=True)
    review = line.review
    if review is None:
        return Word(UNCONFIRMED)
    status = STALE if line.stale else review.decision
    return Word(status, review.reviewer, review.at, review.comment, review.correction, review.was)


def _drafts(request: Request) -> Drafts:
    return Drafts(request.app.state.db, request.app.state.content)


def _filters(params) -> dict[str, str]:
    """The filters the page was asked for, only those that mean something."""
    chosen = {"status": params.get("status") or "", "category": params.get("category") or ""}
    return {k: v for k, v in chosen.items() if v}


def _listing(request: Request, chosen: dict[str, str], status_code: int = 200, error: str | None = None,
             typed: dict[str, str] | None = None) -> Response:
    content = request.app.state.content
    desk = _drafts(request)
    lines = [(line, word(line)) for line in desk.listing()]
    categories = list(dict.fromkeys(line.draft.category or GENERAL for line, _ in lines))
    shown = [(line, w) for line, w in lines
             if chosen.get("status") in (None, w.status)
             and chosen.get("category") in (None, line.draft.category or GENERAL)]
    return page(request, "drafts.html", status_code=status_code, lines=shown, total=len(lines),
                unconfirmed=len(desk.unconfirmed()), waiting=sum(line.status == "reviewed" for line, _ in lines),
                chosen=chosen, categories=categories, general=GENERAL, draft_status=STATUS_NAMES,
                kind_names=KIND_NAMES, roles=content.shared.roles, error=error, typed=typed or {},
                back="/drafts" + ("?" + urlencode(chosen) if chosen else ""))


async def list_drafts(request: Request) -> Response:
    """Lists the drafts with their standing, filtered by status and category."""
    auth.require(request, *SEE_ALL)
    return _listing(request, _filters(request.query_params))


async def review(request: Request) -> Response:
    """Stores the signed-in supervisor's confirmation or correction of one draft."""
    user = auth.require(request, *SEE_ALL)
    form = await auth.checked_form(request)
    chosen = _filters(form)
    key, action = str(form.get("key", "")), str(form.get("action", ""))
    comment = str(form.get("comment", "")) or None
    desk = _drafts(request)
    try:
        place = desk.get(key).place
        if action == "confirm":
            desk.confirm(key, user.name, comment)
            done = f"已确认：{place}"
        elif action == "correct":
            desk.correct(key, user.name, str(form.get("correction", "")), comment)
            done = f"已保存修改：{place}"
        else:
            raise DraftError(f"unknown action '{action}' (confirm or correct)")
    except DraftError as exc:
        typed = {key: str(form.get("correction", ""))} if action == "correct" else {}
        return _listing(request, chosen, status_code=400, error=f"未保存（{key}）：{exc}", typed=typed)
    request.session["flash"] = done
    return RedirectResponse("/drafts" + ("?" + urlencode(chosen) if chosen else ""), status_code=303)


async def download_patch(request: Request) -> Response:
    """Sends the YAML patch of the reviews not yet in the content, for `kefu drafts apply`."""
    auth.require(request, *SEE_ALL)
    desk = _drafts(request)
    text, _, _ = desk.export()
    name = f"kefu-drafts-{desk.clock():%Y%m%d-%H%M}.yaml"
    return Response(text.encode("utf-8"), media_type="application/yaml; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{name}"'})


routes = [
    Route("/drafts", list_drafts, methods=["GET"]),
    Route("/drafts/review", review, methods=["POST"]),
    Route("/drafts/patch.yaml", download_patch, methods=["GET"]),
]
