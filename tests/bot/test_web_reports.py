"""The reports page (/reports), in process: who may see it, its tables checked figure by figure against
cases customers opened through the real service (one closed through casework), the CSV and XLSX files
it serves, and no phone number shown whole anywhere in them."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest
from openpyxl import load_workbook
from starlette.testclient import TestClient

from bot.casework import Casework
from bot.config import Settings
from bot.reports import DamageReport, MonthlyAnalysis, Reports, cell_text, half_month, month
from bot.service import Service
from bot.web import auth
from bot.web.app import create_app
from test_reports import CLAIM_PRICED, DAMAGED, STRANDED, case_of, local_day, tell

# A claim with no place named, markup in the customer's account and a phone beside the amount.
CLAIM_WITH_PHONE = ["申请货损货差理赔", "23456789", "13700137000", "2", "少了两箱<script>alert(1)</script>", "已保价",
                    "价值3000元，找王先生13912345678", "3", "还没拍", "没有"]
PHONES = ["13900001111", "13912345678", "13800138000", "13700137000", "13600136000"]  # every phone the customers gave
PASSWORDS = {"lily": "lily-password", "root": "root-password", "amy": "amy-password"}


class Tables(HTMLParser):
    """The cells of each table of a page, by the table's id, as the reader sees them (entities decoded)."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def signed_in(app, name: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    answer = client.post("/login", data={"csrf_token": token, "name": name, "password": PASSWORDS[name], "next": "/"})
    assert answer.status_code == 303, answer.text
    return client


def add_users(service: Service) -> None:
    auth.add_user(service.store.db, "lily", "supervisor", PASSWORDS["lily"])
    auth.add_user(service.store.db, "root", "admin", PASSWORDS["root"])
    auth.add_user(service.store.db, "amy", "staff", PASSWORDS["amy"], telegram_id=21)


@pytest.fixture
def service(sqlite_url):
    """A damage case, a priced claim closed through casework, a claim with a phone beside its amount, and
    a stranded-goods case (in the monthly analysis, not in the damage report)."""
    service = Service.from_settings(Settings(database_url=sqlite_url))
    tell(service, "a", DAMAGED)
    tell(service, "b", CLAIM_PRICED)
    tell(service, "c", CLAIM_WITH_PHONE)
    tell(service, "d", STRANDED)
    Casework(service).resolve(case_of(service, "12345678").number, 7)
    add_users(service)
    return service


def rows(table: list[list[str]]) -> list[list[str]]:
    return table[1:]  # under the header


def as_text(report_table) -> list[list[str]]:
    return [[cell_text(value) for value in row] for row in report_table.rows]


def test_the_damage_report_of_the_cases_half_month_with_its_figures(service):
    day = local_day(service, "66668888")
    period = half_month(day)
    client = signed_in(create_app(service), "lily")
    answer = client.get(f"/reports?from={day.isoformat()}")
    assert answer.status_code == 200
    tables = Tables(answer.text).tables
    assert tables["damage-cases"][0] == list(DamageReport.COLUMNS)
    numbers = {w: case_of(service, w).number for w in ("66668888", "12345678", "23456789")}
    cases = {row[1]: row for row in rows(tables["damage-cases"])}
    assert set(cases) == set(numbers.values())  # no stranded-goods case
    damaged, priced, phoned = (cases[numbers[w]] for w in ("66668888", "12345678", "23456789"))
    assert (damaged[0], damaged[3], damaged[4], damaged[9], damaged[11]) == ("厦门", "发错货、运输质量", "66668888", "处理中", "否")
    assert damaged[6] == "从厦门发到上海，外箱破损，电脑屏幕碎了，有事打139****5678"
    assert (priced[0], priced[7], priced[8], priced[9]) == ("福州", "两台显示器，价值约6000元", "6000", "已办结")
    assert priced[12] != ""  # when it was closed
    assert (phoned[0], phoned[6], phoned[7], phoned[8]) == ("未注明", "少了两箱<script>alert(1)</script>",
                                                            "价值3000元，找王先生139****5678", "3000")
    assert rows(tables["damage-totals"]) == [
        ["厦门", "1", "1", "0", "0", "0", "1"], ["福州", "1", "0", "1", "0", "6000", "0"],
        ["未注明", "1", "1", "0", "0", "3000", "0"], ["合计", "3", "2", "1", "0", "9000", "1"]]
    # The same figures as `kefu report` makes from the same cases.
    made = Reports(service.store.db, service.content, service.engine.zone).damage(period).tables()
    assert rows(tables["damage-cases"]) == as_text(made[0]) and rows(tables["damage-totals"]) == as_text(made[1])
    assert f'<span id="damage-period">{period.label()}</span>' in answer.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text and "<script>" not in answer.text
    assert not any(phone in answer.text for phone in PHONES)


def test_the_monthly_analysis_counts_every_category(service):
    day = local_day(service, "66668888")
    client = signed_in(create_app(service), "lily")
    tables = Tables(client.get(f"/reports?month={day:%Y-%m}").text).tables
    summary = {row[0]: row for row in rows(tables["monthly-summary"])}
    assert list(summary) == ["货物滞留", "发错货、运输质量", "货损货差理赔", "合计"]  # menu order, then the total
    assert summary["货损货差理赔"][1:5] == ["2", "1", "1", "0"]  # opened, closed, still open, overdue
    assert summary["货物滞留"][1:5] == ["1", "0", "1", "0"]
    assert summary["合计"][1:5] == ["4", "1", "3", "0"]
    assert summary["货损货差理赔"][5] != "" and summary["货物滞留"][5] == ""  # time to close: only of closed cases
    assert ["货损货差理赔", "原因", "保价情况：已保价", "1"] in rows(tables["monthly-details"])
    made = Reports(service.store.db, service.content, service.engine.zone).monthly(month(day.year, day.month)).tables()
    assert rows(tables["monthly-summary"]) == as_text(made[0]) and rows(tables["monthly-details"]) == as_text(made[1])


def test_the_page_defaults_to_the_current_periods_and_links_the_neighbouring_ones(service):
    client = signed_in(create_app(service), "root")  # admins see it too
    page = client.get("/reports").text
    today = Reports(service.store.db, service.content, service.engine.zone).today()
    half = half_month(today)
    assert f'<span id="damage-period">{half.label()}</span>' in page
    assert f'<span id="monthly-period">{month(today.year, today.month).label()}</span>' in page
    before = half_month(half.start - timedelta(days=1))
    assert f'href="/reports?from={before.start}&amp;month={today:%Y-%m}" id="damage-previous"' in page
    assert f'href="/reports/damage.csv?from={half.start}" id="damage-csv"' in page
    empty = Tables(client.get(f"/reports?from={before.start}").text).tables
    assert rows(empty["damage-cases"]) == [["本期没有案件"]]
    assert rows(empty["damage-totals"]) == [["合计", "0", "0", "0", "0", "0", "0"]]


def test_the_report_files_are_csv_with_a_bom_and_xlsx_named_by_their_period(service):
    day = local_day(service, "66668888")
    period = half_month(day)
    client = signed_in(create_app(service), "lily")
    page = Tables(client.get(f"/reports?from={day}").text).tables
    answer = client.get(f"/reports/damage.csv?from={day}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == f'attachment; filename="damage-{period.start}-{period.end}.csv"'
    assert answer.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    split = lines.index([])
    assert lines[:split] == page["damage-cases"]  # the header row first, then the rows the page shows
    assert lines[split + 1:] == page["damage-totals"]
    assert not any(phone in answer.content.decode("utf-8-sig") for phone in PHONES)

    answer = client.get(f"/reports/monthly.xlsx?month={day:%Y-%m}")
    assert answer.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert answer.headers["content-disposition"] == f'attachment; filename="monthly-{day:%Y-%m}.xlsx"'
    book = load_workbook(io.BytesIO(answer.content))
    assert book.sheetnames == [f"月度分析 {month(day.year, day.month).label()}", f"原因与环节 {month(day.year, day.month).label()}"]
    sheet = book.worksheets[0]
    assert [c.value for c in sheet[1]] == list(MonthlyAnalysis.COLUMNS) and sheet[1][0].font.bold
    assert [sheet.cell(row, 2).value for row in range(2, sheet.max_row + 1)] == [1, 1, 2, 4]  # numbers, not text

    damage = load_workbook(io.BytesIO(client.get(f"/reports/damage.xlsx?from={day}").content))
    cells = [str(c.value) for sheet in damage.worksheets for row in sheet.iter_rows() for c in row if c.value is not None]
    assert "139****5678" in " ".join(cells) and not any(phone in " ".join(cells) for phone in PHONES)
    assert client.get(f"/reports/monthly.csv?month={day:%Y-%m}").content.startswith("\ufeff类别,受理".encode())


def test_wrong_addresses_and_dates_are_refused_with_a_reason(service):
    client = signed_in(create_app(service), "lily")
    assert client.get("/reports/damage.pdf").status_code == 404
    assert client.get("/reports/weekly.csv").status_code == 404
    answer = client.get("/reports?from=2026-13-40")
    assert answer.status_code == 400 and "日期应写成 YYYY-MM-DD，不是「2026-13-40」" in answer.text
    answer = client.get("/reports/monthly.xlsx?month=<b>12</b>")
    assert answer.status_code == 400 and "不是「&lt;b&gt;12&lt;/b&gt;」" in answer.text


def test_only_supervisors_and_admins_see_the_reports(service):
    app = create_app(service)
    anonymous = TestClient(app, follow_redirects=False)
    for path in ["/reports", "/reports/damage.csv", "/reports/monthly.xlsx"]:
        answer = anonymous.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next="), path
    staff = signed_in(app, "amy")
    for path in ["/reports", f"/reports/damage.csv?from={date.today()}", "/reports/monthly.xlsx"]:
        answer = staff.get(path)
        assert answer.status_code == 403 and "您的角色无权查看此页面" in answer.text, path
    assert 'href="/reports"' not in staff.get("/").text  # nor in the staff member's menu
    assert 'href="/reports"' in signed_in(app, "lily").get("/").text
