"""The manual's reports, checked figure by figure against cases opened through the real service and
handled through casework: the 15-day damage/shortage report and the monthly analysis, and their files."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from bot.casework import Casework
from bot.config import Settings
from bot.reports import (Reports, csv_bytes, download, half_month, mask_phones, month, parse_month, read_amount,
                         xlsx_bytes)
from bot.service import Service
from bot.storage.tables import CaseRow, aware
from dialogs.content import DEFAULT_DIR, ContentError, load_content
from dialogs.conversation import Inbound

DAMAGED = ["发错货、货物破损或短少", "66668888", "13900001111", "1", "从厦门发到上海，外箱破损，电脑屏幕碎了，有事打13912345678",
           "2"]
CLAIM_PRICED = ["申请货损货差理赔", "12345678", "13800138000", "1", "福州到温州的货，外箱破损，两台显示器屏幕碎了", "只保灭失险",
                "两台显示器，价值约6000元", "1", "已拍外箱和破损部位", "有发票/清单"]
CLAIM_UNPRICED = ["申请货损货差理赔", "23456789", "13700137000", "2", "少了两箱", "已保价", "保价8000，损失3000元", "3",
                  "还没拍", "没有"]
STRANDED = ["货物滞留", "34567890", "13600136000"]


def tell(service: Service, user: str, lines: list[str]) -> None:
    for line in lines:
        service.receive("console", user, Inbound(text=line))


def case_of(service: Service, waybill: str) -> CaseRow:
    with service.store.session() as session:
        return session.exec(select(CaseRow).where(CaseRow.waybill == waybill)).one()


def change(service: Service, number: str, **values) -> None:
    with service.store.session() as session, session.begin():
        row = session.exec(select(CaseRow).where(CaseRow.number == number)).one()
        for name, value in values.items():
            setattr(row, name, value)
        session.add(row)


@pytest.fixture
def desk(database_url):
    """Five cases: a damage case, a priced claim (then resolved, 10 hours after opening), an unpriced
    claim (then escalated), a stranded-goods case, and a claim opened 40 days ago."""
    service = Service.from_settings(Settings(database_url=database_url))
    tell(service, "a", DAMAGED)
    tell(service, "b", CLAIM_PRICED)
    tell(service, "c", CLAIM_UNPRICED)
    tell(service, "d", STRANDED)
    tell(service, "e", ["申请货损货差理赔", "45678901", "13500135000", "1", "上海的货压坏了", "未保价", "500元", "1", "还没拍", "没有"])
    casework = Casework(service)
    old = case_of(service, "45678901")
    change(service, old.number, opened_at=old.opened_at - timedelta(days=40))
    priced = case_of(service, "12345678")
    casework.resolve(priced.number, 7)
    change(service, priced.number, closed_at=case_of(service, "12345678").opened_at + timedelta(hours=10))
    casework.escalate(case_of(service, "23456789").number, 7)
    return service


def reports(service: Service, clock=None) -> Reports:
    return Reports(service.store.db, service.content, service.engine.zone, clock)


def local_day(service: Service, waybill: str) -> date:
    return aware(case_of(service, waybill).opened_at).astimezone(service.engine.zone).date()


def late_clock(service: Service):
    """A moment just past the deadlines of the damage case and the stranded case (both at their first step)."""
    latest = max(aware(case_of(service, w).step_deadline) for w in ("66668888", "34567890"))
    escalated = aware(case_of(service, "23456789").step_deadline)
    assert escalated > latest + timedelta(minutes=1)  # the escalated claim's new deadline is later: not overdue
    return lambda: latest + timedelta(minutes=1)


def test_cases_hold_the_facts_the_reports_read(desk):
    assert case_of(desk, "66668888").facts["details"].startswith("从厦门发到上海")
    assert case_of(desk, "12345678").facts["amount"] == "两台显示器，价值约6000元"
    assert case_of(desk, "23456789").facts["what"] == "货物短少（少件）"


def test_damage_report_lists_the_period_s_cases_by_branch_with_amounts_and_status(desk):
    day = local_day(desk, "66668888")
    report = reports(desk, late_clock(desk)).damage(half_month(day))
    numbers = {w: case_of(desk, w).number for w in ("66668888", "12345678", "23456789")}
    rows = {line.number: line for line in report.lines}
    assert set(rows) == set(numbers.values())  # no stranded case, nothing from 40 days ago
    damaged, priced, unpriced = (rows[numbers[w]] for w in ("66668888", "12345678", "23456789"))
    assert (damaged.branch, damaged.category_name, damaged.situation) == ("厦门", "发错货、运输质量", "问题类型：货物破损")
    assert damaged.details == "从厦门发到上海，外箱破损，电脑屏幕碎了，有事打139****5678"  # the phone masked
    assert (damaged.amount_text, damaged.amount, damaged.status, damaged.step, damaged.overdue) == ("", None, "处理中", "第1/3步 客服专员", True)
    assert (priced.branch, priced.amount_text, priced.amount, priced.status, priced.overdue) == ("福州", "两台显示器，价值约6000元", Decimal(6000), "已办结", False)
    assert priced.situation == "问题类型：货物破损；保价情况：只保灭失险；签收情况：已签收，签收单上注明了问题；价值凭证：有发票/清单"
    assert priced.closed is not None and priced.closed - priced.opened == timedelta(hours=10)
    assert (unpriced.branch, unpriced.amount, unpriced.step, unpriced.overdue) == ("未注明", None, "第2/5步 分公司经理", False)
    assert [(t.branch, t.cases, t.open, t.closed, t.overdue, t.amount, t.unread) for t in report.totals] == [
        ("厦门", 1, 1, 0, 1, Decimal(0), 1), ("福州", 1, 0, 1, 0, Decimal(6000), 0), ("未注明", 1, 1, 0, 0, Decimal(0), 1)]
    total = report.total
    assert (total.cases, total.open, total.closed, total.overdue, total.amount, total.unread) == (3, 2, 1, 1, Decimal(6000), 2)
    assert [line.branch for line in report.lines] == ["厦门", "福州", "未注明"]  # by branch, unknown last


def test_damage_report_of_another_period_is_empty(desk):
    day = local_day(desk, "66668888")
    earlier = half_month(half_month(day).start - timedelta(days=1))
    report = reports(desk).damage(earlier)
    assert report.lines == () and report.total.cases == 0


def test_monthly_analysis_counts_causes_links_and_time_to_close(desk):
    day = local_day(desk, "66668888")
    analysis = reports(desk, late_clock(desk)).monthly(month(day.year, day.month))
    assert [c.category for c in analysis.categories] == ["stranded", "wrong_or_damaged", "claims"]  # menu order
    stranded, damaged, claims = analysis.categories
    assert (stranded.opened, stranded.closed, stranded.still_open, stranded.overdue) == (1, 0, 1, 1)
    assert (damaged.opened, damaged.closed, damaged.still_open, damaged.overdue) == (1, 0, 1, 1)
    assert (claims.opened, claims.closed, claims.still_open, claims.overdue) == (2, 1, 1, 0)
    assert (claims.mean_hours_to_close, claims.median_hours_to_close) == (Decimal("10.0"), Decimal("10.0"))
    assert stranded.mean_hours_to_close is None
    assert [(c.what, c.cases) for c in claims.causes] == [
        ("问题类型：货物破损", 1), ("问题类型：货物短少（少件）", 1), ("保价情况：已保价", 1), ("保价情况：只保灭失险", 1),
        ("签收情况：已签收，签收单上注明了问题", 1), ("签收情况：还没签收", 1), ("价值凭证：有发票/清单", 1), ("价值凭证：没有", 1)]
    assert [(c.what, c.cases) for c in claims.links] == [("第1步 客服专员", 1), ("第2步 分公司经理", 1)]
    assert [(c.what, c.cases) for c in damaged.causes] == [("问题类型：货物破损", 1)]
    assert stranded.causes == ()  # stranded goods collect no choice
    total = analysis.total
    assert (total.opened, total.closed, total.still_open, total.overdue, total.mean_hours_to_close) == (4, 1, 3, 2, Decimal("10.0"))


def test_csv_has_a_bom_a_header_and_the_totals(desk):
    day = local_day(desk, "66668888")
    data = csv_bytes(reports(desk, late_clock(desk)).damage(half_month(day)).tables())
    assert data.startswith("\ufeff".encode("utf-8"))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["网点（推断）", "案件编号", "受理时间"]
    assert [r[0] for r in rows[1:4]] == ["厦门", "福州", "未注明"]
    assert rows[2][8] == "6000" and rows[1][11] == "是"
    assert rows[4] == []
    assert rows[5][0] == "网点（推断）" and rows[-1] == ["合计", "3", "2", "1", "1", "6000", "2"]
    assert not any("13912345678" in cell or "13900001111" in cell for row in rows for cell in row)  # no phone


def test_xlsx_reads_back_with_openpyxl(desk, tmp_path):
    day = local_day(desk, "66668888")
    analysis = reports(desk, late_clock(desk)).monthly(month(day.year, day.month))
    path = tmp_path / "monthly.xlsx"
    path.write_bytes(xlsx_bytes(analysis.tables()))
    book = load_workbook(path)
    assert book.sheetnames == [f"月度分析 {analysis.period.label()}"[:31], f"原因与环节 {analysis.period.label()}"[:31]]
    summary = list(book.worksheets[0].iter_rows(values_only=True))
    assert summary[0] == ("类别", "受理", "已办结", "未办结", "逾期", "平均办结时长（小时）", "办结时长中位数（小时）", "原因（客户所选）", "所处环节")
    assert summary[3][:7] == ("货损货差理赔", 2, 1, 1, 0, 10, 10)
    assert summary[-1][:5] == ("合计", 4, 1, 3, 2)
    detail = list(book.worksheets[1].iter_rows(values_only=True))
    assert ("货损货差理赔", "环节", "第2步 分公司经理", 1) in detail


def test_damage_xlsx_keeps_times_and_amounts_as_values(desk, tmp_path):
    day = local_day(desk, "66668888")
    report = reports(desk).damage(half_month(day))
    path = tmp_path / "damage.xlsx"
    path.write_bytes(xlsx_bytes(report.tables()))
    sheet = load_workbook(path).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    priced = next(r for r in rows if r[0] == "福州")
    assert priced[8] == 6000
    opened = next(line.opened for line in report.lines if line.branch == "福州")
    assert abs((priced[2] - opened.replace(tzinfo=None)).total_seconds()) < 1  # local time, a date cell


def test_a_case_belongs_to_the_half_month_of_its_local_day(desk):
    # 00:30 on the 16th in Shanghai is 16:30 on the 15th in UTC: the second half of the month.
    number = case_of(desk, "66668888").number
    change(desk, number, opened_at=datetime(2026, 11, 15, 16, 30, tzinfo=timezone.utc))
    second = reports(desk).damage(half_month(date(2026, 11, 16)))
    assert [line.number for line in second.lines] == [number]
    assert second.lines[0].opened.strftime("%Y-%m-%d %H:%M") == "2026-11-16 00:30"
    assert reports(desk).damage(half_month(date(2026, 11, 15))).lines == ()
    change(desk, number, opened_at=datetime(2026, 11, 15, 15, 59, tzinfo=timezone.utc))  # 23:59 on the 15th
    assert [line.number for line in reports(desk).damage(half_month(date(2026, 11, 15))).lines] == [number]


def test_periods_amounts_and_masks():
    assert half_month(date(2026, 2, 15)) == half_month(date(2026, 2, 1))
    assert (half_month(date(2026, 2, 16)).start, half_month(date(2026, 2, 28)).end) == (date(2026, 2, 16), date(2026, 2, 28))
    assert half_month(date(2028, 2, 20)).end == date(2028, 2, 29)
    assert parse_month("2026-12") == month(2026, 12)
    with pytest.raises(ValueError):
        parse_month("2026-13")
    assert read_amount("两台显示器，价值约6000元") == Decimal(6000)
    assert read_amount("保价8000，损失3000元") is None and read_amount("还没算") is None
    assert mask_phones("电话13812345678，座机0591-87654321，运单12345678") == "电话138****5678，座机0591-****21，运单12345678"


def test_download_names_and_types(desk):
    day = local_day(desk, "66668888")
    report = reports(desk).damage(half_month(day))
    data, media, name = download(report.tables(), "xlsx", report.file_name())
    assert (media, name) == ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                             f"damage-{report.period.start}-{report.period.end}.xlsx")
    assert data[:2] == b"PK"  # a zip: the workbook
    data, media, name = download(report.tables(), "csv", report.file_name())
    assert media == "text/csv; charset=utf-8" and name.endswith(".csv") and data.startswith(b"\xef\xbb\xbf")
    with pytest.raises(ValueError):
        download(report.tables(), "pdf", "x")


def kefu(*args: str, database_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEFU_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, env=env, timeout=120)


def test_kefu_report_commands_write_real_files(sqlite_url, tmp_path):
    service = Service.from_settings(Settings(database_url=sqlite_url))
    tell(service, "a", DAMAGED)
    tell(service, "b", CLAIM_PRICED)
    day = local_day(service, "66668888")
    period = half_month(day)
    path = tmp_path / "damage.xlsx"
    made = kefu("report", "damage", "--from", str(period.start), "--to", str(period.end), "--format", "xlsx",
                "--output", str(path), database_url=sqlite_url)
    assert made.returncode == 0, made.stderr.decode()
    rows = list(load_workbook(path).worksheets[0].iter_rows(values_only=True))
    assert rows[0][0] == "网点（推断）" and sorted(r[0] for r in rows[1:]) == ["厦门", "福州"]
    totals = list(load_workbook(path).worksheets[1].iter_rows(values_only=True))
    assert totals[-1] == ("合计", 2, 2, 0, 0, 6000, 1)
    printed = kefu("report", "damage", "--from", str(period.start), "--to", str(period.end), "--format", "csv",
                   database_url=sqlite_url)
    assert printed.returncode == 0 and printed.stdout.startswith(b"\xef\xbb\xbf\xe7\xbd\x91\xe7\x82\xb9")  # BOM, 网点
    table = kefu("report", "monthly", "--month", f"{day:%Y-%m}", database_url=sqlite_url)
    assert table.returncode == 0
    assert "货损货差理赔\t1\t0\t1\t" in table.stdout.decode() and "合计\t2\t0\t2\t" in table.stdout.decode()
    refused = kefu("report", "monthly", "--month", "2026-13", database_url=sqlite_url)
    assert refused.returncode == 2 and "not a month: '2026-13'" in refused.stderr.decode()


def test_the_validator_checks_the_report_categories(tmp_path):
    folder = tmp_path / "content"
    shutil.copytree(DEFAULT_DIR, folder)
    shared = (folder / "shared.yaml").read_text(encoding="utf-8")
    (folder / "shared.yaml").write_text(shared.replace("categories: [wrong_or_damaged, claims]", "categories: [wrong_or_damaged, claim]"),
                                        encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        load_content(folder)
    [problem] = caught.value.problems
    assert str(problem).endswith("shared.yaml:" + str(problem.line) + ": reports.damage.categories[1]: no category 'claim' (did you mean 'claims'?)")
