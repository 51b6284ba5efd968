"""The reports and drafts pages in a real headless browser, as test_web_browser.py drives the others:
Playwright with Debian's Chromium against `kefu web` started as a process, over an SQLite database whose
damage cases customers opened through the engine. A supervisor downloads the reports (Playwright's
download API: the files' bytes are checked) and confirms and corrects drafts through the forms."""

from __future__ import annotations

import io
import os

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from bot.config import Settings
from bot.drafts import Drafts, read_patch
from bot.reports import DamageReport, MonthlyAnalysis, half_month
from bot.service import Service
from test_drafts import GREETING
from test_reports import CLAIM_PRICED, DAMAGED, local_day, tell
from test_web_browser import PASSWORDS, browser, kefu, page, serve_web, sign_in  # noqa: F401  (fixtures)

DEADLINE = "claims.yaml:handling.0.deadline_hours"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`kefu web` on a free port over a database with a damage case and a claim; yields its base URL and
    the database's URL."""
    folder = tmp_path_factory.mktemp("web-pages")
    url = f"sqlite:///{folder / 'kefu.db'}"
    service = Service.from_settings(Settings(database_url=url))
    tell(service, "a", DAMAGED)
    tell(service, "b", CLAIM_PRICED)
    env = {**os.environ, "KEFU_DATABASE_URL": url}
    kefu(["user", "add", "lily", "--role", "supervisor"], env, PASSWORDS["lily"] + "\n")
    with serve_web(folder, env) as base:
        yield base, url, service


def downloaded(page: Page, link: str) -> tuple[str, bytes]:
    """Clicks a download link; the file's suggested name and its bytes."""
    with page.expect_download() as info:
        page.click(link)
    download = info.value
    with open(download.path(), "rb") as file:
        return download.suggested_filename, file.read()


def test_a_supervisor_reads_the_reports_and_downloads_them(page, server):
    _, _, service = server
    day = local_day(service, "66668888")
    period = half_month(day)
    sign_in(page, "lily", target=f"/login?next=/reports?from={day}")
    expect(page.locator("#damage-period")).to_have_text(period.label())
    expect(page.locator("#damage-cases tbody tr")).to_have_count(2)
    expect(page.locator("#damage-totals tbody tr").last).to_contain_text("合计")
    expect(page.locator("#damage-cases")).to_contain_text("139****5678")  # the phone the customer wrote, masked

    name, body = downloaded(page, "#damage-csv")
    assert name == f"damage-{period.start}-{period.end}.csv"
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark, for Excel
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0] == ",".join(DamageReport.COLUMNS) and len(lines) > 3
    assert "13912345678" not in body.decode("utf-8-sig")

    name, body = downloaded(page, "#monthly-xlsx")
    assert name == f"monthly-{day:%Y-%m}.xlsx"
    book = load_workbook(io.BytesIO(body))
    sheet = book.worksheets[0]
    assert [cell.value for cell in sheet[1]] == list(MonthlyAnalysis.COLUMNS)
    assert [sheet.cell(row, 1).value for row in range(2, sheet.max_row + 1)] == ["发错货、运输质量", "货损货差理赔", "合计"]

    page.click("#damage-previous")  # the half month before: no cases
    expect(page.locator("#damage-cases tbody tr")).to_have_text(["本期没有案件"])
    page.fill("#damage-form input[name=from]", day.isoformat())
    page.click("#damage-form button")
    expect(page.locator("#damage-cases tbody tr")).to_have_count(2)
    assert page.dialogs == []


def test_a_supervisor_confirms_and_corrects_drafts_and_downloads_the_patch(page, server):
    _, url, service = server
    sign_in(page, "lily", target="/login?next=/drafts?category=general")
    unconfirmed = page.locator("#unconfirmed b").text_content()
    greeting = page.locator(f'tr[data-key="{GREETING}"]')
    greeting.locator(".confirm-form input[name=comment]").fill("可以")
    greeting.locator(".confirm-form button").click()
    expect(page.locator("#flash")).to_have_text("已确认：texts.greeting")
    expect(page).to_have_url(f"{server[0]}/drafts?category=general")  # back where the supervisor was
    expect(greeting.locator(".status")).to_have_text("已确认")
    expect(greeting.locator(".who")).to_contain_text("lily · ")
    expect(greeting.locator(".comment")).to_have_text("可以")
    expect(page.locator("#waiting b")).to_have_text("1")
    assert page.locator("#unconfirmed b").text_content() == unconfirmed  # not in the content until the patch is applied

    page.goto("/drafts?category=claims")
    deadline = page.locator(f'tr[data-key="{DEADLINE}"]')
    deadline.locator("summary").click()
    deadline.locator(".correct-form input[name=correction]").fill("0")
    deadline.locator(".correct-form button").click()
    expect(page.locator("#draft-error")).to_contain_text("a deadline must be more than 0 hours")
    deadline.locator(".correct-form input[name=correction]").fill("8")
    deadline.locator(".correct-form input[name=comment]").fill("一个工作日")
    deadline.locator(".correct-form button").click()
    expect(deadline.locator(".status")).to_have_text("已修改")
    expect(deadline.locator(".correction")).to_have_text("8")

    name, body = downloaded(page, "#patch")
    assert name.startswith("kefu-drafts-") and name.endswith(".yaml")
    assert [(c.key, c.decision, c.value, c.by) for c in read_patch(body.decode("utf-8"))] == [
        (GREETING, "confirmed", None, "lily"), (DEADLINE, "corrected", "8", "lily")]
    stored = Drafts(Service.from_settings(Settings(database_url=url)).store.db, service.content)
    assert [(r.decision, r.reviewer, r.comment) for r in stored.history(GREETING)] == [("confirmed", "lily", "可以")]
    assert page.dialogs == []
