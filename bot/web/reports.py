"""The manual's reports (/reports): the 15-day damage/shortage report (货损货差十五日报表) for a half month
and the monthly analysis for a month, as tables and as CSV or XLSX files (/reports/damage.csv?from=…,
/reports/monthly.xlsx?month=…). Supervisors and admins only; the figures and files are bot/reports.py's,
the same that `kefu report` makes (phone numbers already masked there)."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.reports import DamageReport, MonthlyAnalysis, Period, Reports, cell_text, download, half_month, parse_month
from bot.supervision import SEE_ALL
from bot.web import auth
from bot.web.templating import page

FORMATS = ("csv", "xlsx")


def _reports(request: Request) -> Reports:
    state = request.app.state
    return Reports(state.db, state.content, state.zone)


def _half_month(text: str | None) -> Period | None:
    """The half month holding the day asked for (?from=YYYY-MM-DD); None when none is asked."""
    if not text:
        return None
    try:
        return half_month(date.fromisoformat(text))
    except ValueError:
        raise HTTPException(400, f"日期应写成 YYYY-MM-DD，不是「{text}」") from None


def _month(text: str | None) -> Period | None:
    """The month asked for (?month=YYYY-MM); None when none is asked."""
    if not text:
        return None
    try:
        return parse_month(text)
    except ValueError:
        raise HTTPException(400, f"月份应写成 YYYY-MM，不是「{text}」") from None


def _made(request: Request, which: str) -> DamageReport | MonthlyAnalysis:
    reports = _reports(request)
    if which == "damage":
        return reports.damage(_half_month(request.query_params.get("from")))
    return reports.monthly(_month(request.query_params.get("month")))


async def show_reports(request: Request) -> Response:
    """Shows the damage/shortage report of a half month and the monthly analysis of a month."""
    auth.require(request, *SEE_ALL)
    damage, monthly = _made(request, "damage"), _made(request, "monthly")
    half, whole = damage.period, monthly.period
    shown = {"from": half.start.isoformat(), "month": f"{whole.start:%Y-%m}"}

    def link(**changed: str) -> str:
        return "/reports?" + urlencode({**shown, **changed})

    before = whole.start - timedelta(days=1)
    after = whole.end + timedelta(days=1)
    return page(request, "reports.html", damage=damage, monthly=monthly, cell=cell_text,
                damage_from=shown["from"], month_value=shown["month"],
                damage_links={"previous": link(**{"from": half_month(half.start - timedelta(days=1)).start.isoformat()}),
                              "next": link(**{"from": half_month(half.end + timedelta(days=1)).start.isoformat()})},
                month_links={"previous": link(month=f"{before:%Y-%m}"), "next": link(month=f"{after:%Y-%m}")},
                damage_files={fmt: f"/reports/damage.{fmt}?" + urlencode({"from": shown["from"]}) for fmt in FORMATS},
                monthly_files={fmt: f"/reports/monthly.{fmt}?" + urlencode({"month": shown["month"]}) for fmt in FORMATS})


async def download_report(request: Request) -> Response:
    """Sends one report as a CSV or XLSX file."""
    auth.require(request, *SEE_ALL)
    fmt = request.path_params["fmt"]
    if fmt not in FORMATS:
        raise HTTPException(404)
    which = request.path_params["report"]
    if which not in ("damage", "monthly"):
        raise HTTPException(404)
    report = _made(request, which)
    body, media_type, filename = download(report.tables(), fmt, report.file_name())
    return Response(body, media_type=media_type,
                    headers={"content-disposition": f'attachment; filename="{filename}"'})


routes = [
    Route("/reports", show_reports, methods=["GET"]),
    Route("/reports/{report:str}.{fmt:str}", download_report, methods=["GET"]),
]
