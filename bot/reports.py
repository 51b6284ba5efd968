"""The manual's reports (第一章 工作职责 四、六): the 15-day damage/shortage report (货损货差十五日报表) and
the monthly analysis of cases by category, as plain rows for a web page or the terminal, and as CSV
and XLSX files.

Reading the cases is one function (load_cases); everything after it is pure computation over plain
values and a clock passed in, so a page and the CLI get the same figures."""

from __future__ import annotations

import calendar
import csv
import io
import re
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any, Iterable, Sequence

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session

from bot.storage import queries
from bot.storage.tables import aware
from dialogs.content import Content
from dialogs.entities import extract

# Mainland mobiles and landlines with an area code, wherever they stand (right after Chinese text too).
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)|(?<![\d-])(0\d{2,3})-(\d{7,8})(?!\d)")
UNKNOWN_BRANCH = "未注明"  # no place named in the case's facts
HOURS = Decimal("0.1")


# -- periods -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """Local calendar days, both ends included."""

    start: date
    end: date

    def label(self) -> str:
        return f"{self.start.isoformat()}～{self.end.isoformat()}"

    def bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        """The period as moments: from the first day's local midnight up to (not including) the next day's after the last."""
        return (datetime.combine(self.start, time(), zone), datetime.combine(self.end + timedelta(days=1), time(), zone))


def half_month(day: date) -> Period:
    """The 15-day period of the damage/shortage report that holds this day: the 1st to the 15th, or the
    16th to the month's last day (our reading: the manual names a fifteen-day report, not its days)."""
    if day.day <= 15:
        return Period(day.replace(day=1), day.replace(day=15))
    return Period(day.replace(day=16), day.replace(day=calendar.monthrange(day.year, day.month)[1]))


def month(year: int, number: int) -> Period:
    return Period(date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1]))


def parse_month(text: str) -> Period:
    """A month written YYYY-MM (ValueError otherwise)."""
    try:
        year, number = (int(part) for part in text.split("-"))
        return month(year, number)
    except (ValueError, TypeError):
        raise ValueError(f"not a month: {text!r} (expected YYYY-MM)") from None


# -- what the reports read of a case -------------------------------------------------------------

@dataclass(frozen=True)
class CaseRecord:
    """One case as the reports read it: plain values, times aware (UTC)."""

    number: str
    category: str
    status: str  # open, closed
    facts: dict[str, Any]
    step: int  # index into the category's handling ladder
    step_role: str
    step_deadline: datetime
    opened_at: datetime
    closed_at: datetime | None = None
    paused: bool = False  # waiting on the customer: the deadline clock is stopped
    waybill: str | None = None


def load_cases(db: DbEngine, start: datetime, end: datetime, categories: Iterable[str] | None = None) -> list[CaseRecord]:
    """The cases opened from start up to (not including) end, oldest first; only these categories if given."""
    # In UTC: SQLite keeps kefu's times as UTC without a zone and compares a bound's wall-clock digits.
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    with Session(db) as session:
        rows = queries.cases_opened(session, start, end, None if categories is None else list(categories))
        return [CaseRecord(r.number, r.category, r.status, dict(r.facts or {}), r.step, r.step_role,
                           aware(r.step_deadline), aware(r.opened_at), aware(r.closed_at), r.paused_at is not None,
                           r.waybill)
                for r in rows]


def overdue(case: CaseRecord, now: datetime) -> bool:
    """Open, running (not waiting on the customer) and past its step's deadline."""
    return case.status == "open" and not case.paused and case.step_deadline <= now


# -- a table, and its files ----------------------------------------------------------------------

@dataclass(frozen=True)
class Table:
    """Rows under a header row: what a page shows, and what the files hold."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def csv_bytes(tables: Sequence[Table]) -> bytes:
    """The tables as one CSV file, UTF-8 with a byte-order mark (so Excel reads Chinese right); the first
    table's header is the first line, further tables follow after an empty line, each with its header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for i, table in enumerate(tables):
        if i:
            writer.writerow([])
        writer.writerow(table.columns)
        writer.writerows([cell_text(v) for v in row] for row in table.rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx_bytes(tables: Sequence[Table]) -> bytes:
    """The tables as an Excel workbook, one sheet each (named by the table's title), header row first and frozen."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for table in tables:
        sheet = book.create_sheet(_sheet_name(table.title))
        sheet.append(list(table.columns))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append([_xlsx_value(v) for v in row])
        for row_cells in sheet.iter_rows(min_row=2):
            for cell in row_cells:
                if isinstance(cell.value, datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm"
        sheet.freeze_panes = "A2"
        for i, column in enumerate(table.columns, start=1):
            longest = max([len(cell_text(column))] + [len(cell_text(row[i - 1])) for row in table.rows[:200]])
            sheet.column_dimensions[sheet.cell(1, i).column_letter].width = min(60, 4 + 2 * longest)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"


def download(tables: Sequence[Table], fmt: str, name: str) -> tuple[bytes, str, str]:
    """A report as a file to serve: its bytes, media type and file name (name plus .csv or .xlsx)."""
    if fmt == "csv":
        return csv_bytes(tables), CSV_TYPE, f"{name}.csv"
    if fmt == "xlsx":
        return xlsx_bytes(tables), XLSX_TYPE, f"{name}.xlsx"
    raise ValueError(f"no file format {fmt!r}: csv or xlsx")


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)  # Excel keeps no time zone: the report's local time
    if isinstance(value, bool):
        return cell_text(value)
    return value


def _sheet_name(title: str) -> str:
    for bad in "[]:*?/\\":
        title = title.replace(bad, "-")
    return title[:31]


def text_lines(tables: Sequence[Table]) -> list[str]:
    """The tables for a terminal: a title line, then tab-separated rows under the header."""
    lines: list[str] = []
    for table in tables:
        if lines:
            lines.append("")
        lines.append(f"# {table.title}")
        lines.append("\t".join(table.columns))
        lines += ["\t".join(cell_text(v) for v in row) for row in table.rows]
    return lines


# -- the 15-day damage/shortage report ---------------------------------------------------------

@dataclass(frozen=True)
class DamageLine:
    """One case of the damage/shortage report."""

    branch: str  # the first place named in the case's facts (see branch_of), or 未注明
    number: str
    opened: datetime  # local time
    category: str
    category_name: str
    waybill: str
    situation: str  # the case's choices: 问题类型：货物破损；保价情况：只保灭失险…
    details: str  # the customer's account, phones masked
    amount_text: str  # the amount as the customer put it
    amount: Decimal | None  # read from amount_text when it names exactly one amount
    status: str  # as shown to customers: 处理中, 已办结
    step: str  # 第2/5步 分公司经理
    overdue: bool
    closed: datetime | None  # local time


@dataclass(frozen=True)
class BranchTotal:
    branch: str
    cases: int
    open: int
    closed: int
    overdue: int
    amount: Decimal  # the sum of the amounts read
    unread: int  # cases whose amount could not be read as one number (none given, or several)


@dataclass(frozen=True)
class DamageReport:
    period: Period
    categories: tuple[str, ...]
    lines: tuple[DamageLine, ...]
    totals: tuple[BranchTotal, ...]  # per branch, by most cases
    total: BranchTotal  # every branch: 合计

    COLUMNS = ("网点（推断）", "案件编号", "受理时间", "类别", "运单号", "问题情况", "情况描述", "金额（客户所述）",
               "金额（元）", "状态", "当前环节", "逾期", "办结时间")
    TOTAL_COLUMNS = ("网点（推断）", "案件数", "处理中", "已办结", "逾期", "金额合计（元）", "金额未能读出的案件")

    def file_name(self) -> str:
        return f"damage-{self.period.start}-{self.period.end}"

    def tables(self) -> list[Table]:
        cases = Table(f"货损货差十五日报表 {self.period.label()}", self.COLUMNS, tuple(
            (line.branch, line.number, line.opened, line.category_name, line.waybill, line.situation, line.details,
             line.amount_text, line.amount, line.status, line.step, line.overdue, line.closed) for line in self.lines))
        totals = Table(f"按网点合计 {self.period.label()}", self.TOTAL_COLUMNS, tuple(
            (t.branch, t.cases, t.open, t.closed, t.overdue, t.amount, t.unread) for t in (*self.totals, self.total)))
        return [cases, totals]


def branch_of(case: CaseRecord, content: Content) -> str:
    """Where the case belongs, as far as the stored facts tell: no fact stores a branch, so this is the
    first place (from shared.yaml's routing.places) named in the case's facts, in the category's fact
    order (a route 从厦门发到上海 gives 厦门, the origin); 未注明 when none names a place."""
    kind = content.case_kinds.get(case.category)
    order = [f for f in (kind.facts if kind else {}) if f in case.facts] + [f for f in case.facts if not kind or f not in kind.facts]
    places = content.shared.routing.places
    for fact in order:
        value = case.facts.get(fact)
        if isinstance(value, str):
            cities = extract(value, places).cities
            if cities:
                return cities[0]
    return UNKNOWN_BRANCH


def mask_phones(text: str) -> str:
    """Hides the phone numbers in a customer's words (138****8000, 0591-****21): reports never need them."""
    def masked(m: re.Match) -> str:
        if m.group(1):
            return f"{m.group(1)}****{m.group(3)}"
        return f"{m.group(4)}-****{m.group(5)[-2:]}"

    return _PHONE.sub(masked, text)


def read_amount(text: str) -> Decimal | None:
    """The amount a text names, when it names exactly one (保价8000，损失3000 names two: None)."""
    amounts = extract(text).amounts
    return amounts[0] if len(amounts) == 1 else None


def damage_report(cases: Iterable[CaseRecord], content: Content, period: Period, zone: tzinfo, now: datetime) -> DamageReport:
    """The 15-day report over the cases given (those of the report's categories opened in the period)."""
    config = content.shared.reports
    if config is None:
        raise ValueError("the content has no 'reports' section in shared.yaml")
    categories = tuple(config.damage.categories)
    lines = []
    for case in cases:
        if case.category not in categories:
            continue
        kind = content.case_kinds[case.category]
        amount_text = "；".join(str(case.facts[f]) for f in config.damage.amount_facts if case.facts.get(f))
        lines.append(DamageLine(
            branch=branch_of(case, content), number=case.number, opened=case.opened_at.astimezone(zone),
            category=case.category, category_name=kind.name, waybill=case.waybill or "",
            situation="；".join(f"{fact.label}：{case.facts[fid]}" for fid, fact in kind.facts.items()
                               if fact.options and case.facts.get(fid)),
            details=mask_phones("；".join(str(case.facts[fid]) for fid, fact in kind.facts.items()
                                  if fact.describes and case.facts.get(fid))),
            # Read before masking (a masked phone's digits are no amount); shown masked: customers put
            # a phone beside the amount too (价值6000元，找王先生139…).
            amount_text=mask_phones(amount_text), amount=read_amount(amount_text) if amount_text else None,
            status=content.shared.case_statuses.get(case.status, case.status), step=_step(case, content),
            overdue=overdue(case, now), closed=case.closed_at.astimezone(zone) if case.closed_at else None,
        ))
    lines.sort(key=lambda line: (line.branch == UNKNOWN_BRANCH, line.branch, line.opened, line.number))
    by_branch: dict[str, list[DamageLine]] = {}
    for line in lines:
        by_branch.setdefault(line.branch, []).append(line)
    totals = sorted((_total(branch, group) for branch, group in by_branch.items()),
                    key=lambda t: (-t.cases, t.branch == UNKNOWN_BRANCH, t.branch))
    return DamageReport(period, categories, tuple(lines), tuple(totals), _total("合计", lines))


def _total(branch: str, lines: list[DamageLine]) -> BranchTotal:
    open_ = sum(line.closed is None for line in lines)
    return BranchTotal(branch, len(lines), open_, len(lines) - open_, sum(line.overdue for line in lines),
                       sum((line.amount for line in lines if line.amount is not None), Decimal(0)),
                       sum(line.amount is None for line in lines))


def _step(case: CaseRecord, content: Content) -> str:
    kind = content.case_kinds.get(case.category)
    role = content.shared.roles[case.step_role].name if case.step_role in content.shared.roles else case.step_role
    return f"第{case.step + 1}/{len(kind.handling) if kind else '?'}步 {role}"


# -- the monthly analysis ------------------------------------------------------------------------

@dataclass(frozen=True)
class Count:
    what: str  # 问题类型：货物破损, or 第2步 分公司经理
    cases: int


@dataclass(frozen=True)
class CategoryMonth:
    """One category's cases opened in the month, as they stand now."""

    category: str
    name: str
    opened: int
    closed: int
    still_open: int
    overdue: int
    mean_hours_to_close: Decimal | None  # of the closed ones, wall-clock hours from opening to closing
    median_hours_to_close: Decimal | None
    causes: tuple[Count, ...] = ()  # each choice fact's answers (问题类型, 涉及人员, 保价情况 …), as collected
    links: tuple[Count, ...] = ()  # the handling step each case stands at (open) or was closed at


@dataclass(frozen=True)
class MonthlyAnalysis:
    period: Period
    categories: tuple[CategoryMonth, ...]  # in menu order, only categories with cases
    total: CategoryMonth

    COLUMNS = ("类别", "受理", "已办结", "未办结", "逾期", "平均办结时长（小时）", "办结时长中位数（小时）", "原因（客户所选）", "所处环节")
    DETAIL_COLUMNS = ("类别", "项目", "内容", "案件数")

    def file_name(self) -> str:
        return f"monthly-{self.period.start:%Y-%m}"

    def tables(self) -> list[Table]:
        summary = Table(f"月度分析 {self.period.label()}", self.COLUMNS, tuple(
            (c.name, c.opened, c.closed, c.still_open, c.overdue, c.mean_hours_to_close, c.median_hours_to_close,
             "、".join(f"{x.what} {x.cases}" for x in c.causes), "、".join(f"{x.what} {x.cases}" for x in c.links))
            for c in (*self.categories, self.total)))
        detail = Table(f"原因与环节 {self.period.label()}", self.DETAIL_COLUMNS, tuple(
            (c.name, kind, x.what, x.cases) for c in self.categories
            for kind, counts in (("原因", c.causes), ("环节", c.links)) for x in counts))
        return [summary, detail]


def monthly_analysis(cases: Iterable[CaseRecord], content: Content, period: Period, now: datetime) -> MonthlyAnalysis:
    """Per category: cases opened in the period, closed, still open, overdue, time to close, what the
    customers chose for each choice fact (the causes as collected), and the handling step reached."""
    grouped: dict[str, list[CaseRecord]] = {}
    for case in cases:
        grouped.setdefault(case.category, []).append(case)
    order = [c for c in content.shared.menu if c in grouped] + sorted(c for c in grouped if c not in content.shared.menu)
    rows = tuple(_category_month(cid, grouped[cid], content, now) for cid in order)
    everything = [case for cid in order for case in grouped[cid]]
    total = _category_month("", everything, content, now, name="合计", details=False)
    return MonthlyAnalysis(period, rows, total)


def _category_month(cid: str, cases: list[CaseRecord], content: Content, now: datetime, name: str | None = None,
                    details: bool = True) -> CategoryMonth:
    kind = content.case_kinds.get(cid)
    hours = sorted((c.closed_at - c.opened_at).total_seconds() / 3600 for c in cases if c.closed_at is not None)
    causes: list[Count] = []
    links: list[Count] = []
    if details and kind is not None:
        for fid, fact in kind.facts.items():
            if fact.options:
                for option in fact.options:
                    n = sum(c.facts.get(fid) == option for c in cases)
                    if n:
                        causes.append(Count(f"{fact.label}：{option}", n))
                unanswered = sum(not c.facts.get(fid) for c in cases)
                if unanswered:
                    causes.append(Count(f"{fact.label}：未回答", unanswered))
        for i, step in enumerate(kind.handling):
            n = sum(c.step == i for c in cases)
            if n:
                role = content.shared.roles[step.role].name if step.role in content.shared.roles else step.role
                links.append(Count(f"第{i + 1}步 {role}", n))
    closed = sum(c.status == "closed" for c in cases)
    return CategoryMonth(
        cid, name or (kind.name if kind else cid), len(cases), closed, len(cases) - closed,
        sum(overdue(c, now) for c in cases),
        _hours(statistics.fmean(hours)) if hours else None, _hours(statistics.median(hours)) if hours else None,
        tuple(causes), tuple(links))


def _hours(value: float) -> Decimal:
    return Decimal(str(value)).quantize(HOURS)


# -- for the CLI and the pages --------------------------------------------------------------------

@dataclass
class Reports:
    """Reads the cases and makes the reports; the web pages and `kefu report` both call these."""

    db: DbEngine
    content: Content
    zone: tzinfo
    clock: Any = field(default=None)  # () -> aware datetime; default: now

    def now(self) -> datetime:
        from bot.storage.tables import utcnow

        return self.clock() if self.clock else utcnow()

    def today(self) -> date:
        return self.now().astimezone(self.zone).date()

    def damage(self, period: Period | None = None) -> DamageReport:
        """The 15-day damage/shortage report; default: the current half month."""
        period = period or half_month(self.today())
        config = self.content.shared.reports
        if config is None:
            raise ValueError("the content has no 'reports' section in shared.yaml: it says which categories the report lists")
        cases = load_cases(self.db, *period.bounds(self.zone), config.damage.categories)
        return damage_report(cases, self.content, period, self.zone, self.now())

    def monthly(self, period: Period | None = None) -> MonthlyAnalysis:
        """The monthly analysis by category; default: the current month."""
        today = self.today()
        period = period or month(today.year, today.month)
        return monthly_analysis(load_cases(self.db, *period.bounds(self.zone)), self.content, period, self.now())
