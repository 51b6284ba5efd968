"""The supervisor pages in a real headless browser: Playwright driving Debian's Chromium against `kefu web`
started as a process on a free port, over an SQLite database whose cases customers opened through the
engine and whose users `kefu user add` made."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from sqlmodel import select
from playwright.sync_api import Page, expect, sync_playwright

from bot.casework import Casework
from bot.config import Settings
from bot.service import Service
from dialogs.content import DEFAULT_DIR
from dialogs.conversation import Inbound

CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/run installs it); Playwright's own download does not work here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCRIPT = "<script>alert(1)</script>"
IMAGE = "<img src=x onerror=alert(2)>"
STRANDED = ["货物滞留", "12345678", "13800138000", SCRIPT, IMAGE]
ATTITUDE = ["我要投诉司机态度差", "送货的司机", "55667788", "13900002222"]
PASSWORDS = {"lily": "lily-password", "amy": "amy-password"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kefu(args: list[str], env: dict, stdin: str = "") -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def _seed(url: str) -> dict[str, str]:
    """Two customers' cases, the second claimed by staff member 21; two trainees' sessions."""
    from bot.practice import run_training
    from bot.storage.tables import CaseRow
    from dialogs.practice import load_training, topic_texts

    service = Service.from_settings(Settings(database_url=url))
    for user, lines in (("9001", STRANDED), ("9002", ATTITUDE)):
        for line in lines:
            service.receive("telegram", user, Inbound(text=line))
    desk = Casework(service)
    desk.add_staff(21, "staff")
    with service.store.session() as session:
        numbers = {c.category: c.number for c in session.exec(select(CaseRow))}
    desk.claim(numbers["attitude"], 21)
    training = load_training(DEFAULT_DIR, set(service.content.categories), topic_texts(service.content))
    for trainee in ("amy", "bob"):
        run_training(service.content, training, service.store, trainee, "transfer", 1,
                     source=io.StringIO("您好，非常抱歉，我来帮您联系外协窗口查询。\n"), out=io.StringIO())
    return numbers


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`kefu web` on a free port over a seeded database; yields its base URL and the case numbers."""
    folder = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{folder / 'kefu.db'}"
    numbers = _seed(url)
    env = {**os.environ, "KEFU_DATABASE_URL": url}
    kefu(["user", "add", "lily", "--role", "supervisor"], env, PASSWORDS["lily"] + "\n")
    kefu(["user", "add", "amy", "--role", "staff", "--telegram-id", "21"], env, PASSWORDS["amy"] + "\n")
    with serve_web(folder, env) as base:
        yield base, numbers


@contextmanager
def serve_web(folder: Path, env: dict) -> Iterator[str]:
    """Runs `kefu web` on a free port (its log in folder/web.log) until the block ends; yields its base URL."""
    port = free_port()
    log = open(folder / "web.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "bot", "web", "--port", str(port)], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # until it answers (a readiness wait, not a measurement)
            try:
                urllib.request.urlopen(f"{base}/login", timeout=1)
                break
            except OSError:
                assert process.poll() is None, (folder / "web.log").read_text()
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(base_url=server[0])
    page = context.new_page()
    page.dialogs = []  # every alert() the page tried: must stay empty
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    context.close()


def sign_in(page: Page, name: str, password: str | None = None, target: str = "/") -> None:
    page.goto(target)
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password or PASSWORDS[name])
    page.click("button[type=submit]")


def test_a_wrong_password_is_refused_and_the_right_one_leads_where_asked(page, server):
    page.goto("/cases")
    expect(page).to_have_url(re.compile(r"/login\?next=/cases$"))
    sign_in(page, "lily", "not-her-password", target=page.url)
    expect(page.locator("#login-error")).to_have_text("用户名或密码不正确")
    sign_in(page, "nobody", "whatever-it-is", target="/login?next=/cases")
    expect(page.locator("#login-error")).to_have_text("用户名或密码不正确")
    sign_in(page, "lily", target="/login?next=/cases")
    expect(page).to_have_url(re.compile(r"/cases$"))
    expect(page.locator("#who")).to_have_text("lily（主管）")


def test_the_dashboard_counts_cases_and_draws_them(page, server):
    sign_in(page, "lily")
    expect(page.locator("#open-cases b")).to_have_text("2")
    expect(page.locator("#overdue-cases b")).to_have_text("0")
    for chart in ("#chart-week", "#chart-month"):
        expect(page.locator(f"{chart} rect")).to_have_count(2)
        expect(page.locator(f"{chart} text").first).to_be_visible()
    assert set(page.locator("#chart-month rect title").all_text_contents()) == {"货物滞留：1 件", "服务态度：1 件"}


def test_the_case_list_filters_and_searches(page, server):
    _, numbers = server
    sign_in(page, "lily", target="/login?next=/cases")
    expect(page.locator("#case-count")).to_contain_text("共 2 件")
    page.select_option("select[name=category]", "stranded")
    page.click("#case-filter button[type=submit]")
    expect(page.locator("#case-list tbody tr")).to_have_count(1)
    expect(page.locator("#case-list tbody tr a")).to_have_text(numbers["stranded"])
    page.select_option("select[name=category]", "")
    page.fill("input[name=q]", "态度")  # a word the customer wrote
    page.click("#case-filter button[type=submit]")
    expect(page.locator("#case-list tbody tr a")).to_have_text([numbers["attitude"]])
    page.fill("input[name=q]", "12345678")  # a waybill
    page.click("#case-filter button[type=submit]")
    expect(page.locator("#case-list tbody tr a")).to_have_text([numbers["stranded"]])
    page.fill("input[name=q]", "")
    page.check("input[name=overdue]")
    page.click("#case-filter button[type=submit]")
    expect(page.locator("#case-count")).to_contain_text("共 0 件")


def test_a_case_shows_its_transcript_in_order_and_what_customers_wrote_as_text(page, server):
    _, numbers = server
    sign_in(page, "lily", target="/login?next=/cases")
    page.click(f"text={numbers['stranded']}")
    expect(page.locator("#case-number")).to_have_text(numbers["stranded"])
    customer = page.locator("#transcript .message.customer .text")
    expect(customer).to_have_text(STRANDED)  # in order, exactly as written
    expect(page.locator("#transcript .message.bot").first).to_contain_text("您好")
    # The customer's markup is characters on the page: no element made of it, no script run.
    assert page.locator("#transcript script, #transcript img").count() == 0
    assert page.dialogs == []
    expect(page.locator("#facts")).to_contain_text("13800138000")  # supervisors see the phone
    expect(page.locator("#ladder li.current")).to_contain_text("当前")
    expect(page.locator("#timeline")).to_contain_text("立案")
    expect(page.locator("#rating")).to_contain_text("未评分")


def test_a_supervisor_acts_on_a_case_through_its_forms(page, server):
    _, numbers = server
    sign_in(page, "lily", target=f"/login?next=/cases/{numbers['stranded']}")
    page.fill("#note-form input[name=text]", f"请回电 {SCRIPT}")
    page.click("#note-form button")
    expect(page.locator("#flash")).to_have_text("已添加备注")
    expect(page.locator("#marks")).to_contain_text(f"lily · 备注：请回电 {SCRIPT}")
    page.fill("#tag-form input[name=text]", "重点跟进")
    page.click("#tag-form button")
    expect(page.locator("#tags")).to_contain_text("重点跟进")
    flagged = page.locator("#transcript tr.message").nth(1)
    flagged.locator("input[name=text]").fill("回答太慢")
    flagged.locator("button").click()
    expect(page.locator("#transcript tr.flagged")).to_contain_text("⚑ lily")
    page.click("#escalate-form button")
    expect(page.locator("#flash")).to_contain_text("已升级到第2步")
    expect(page.locator("#timeline")).to_contain_text("由 lily")
    assert page.dialogs == []


def test_a_post_without_the_form_token_is_refused(page, server):
    _, numbers = server
    sign_in(page, "lily")
    forged = page.request.post(f"/cases/{numbers['stranded']}/note", form={"text": "伪造的备注"}, max_redirects=0)
    assert forged.status == 403
    wrong = page.request.post(f"/cases/{numbers['stranded']}/note", form={"text": "伪造的备注", "csrf_token": "guess"},
                              max_redirects=0)
    assert wrong.status == 403
    page.goto(f"/cases/{numbers['stranded']}")
    expect(page.locator("#marks")).not_to_contain_text("伪造的备注")


def test_staff_see_only_their_own_cases_with_phones_masked_and_no_supervisor_page(page, server):
    _, numbers = server
    sign_in(page, "amy", target="/login?next=/cases")
    expect(page.locator("#case-list tbody tr a")).to_have_text([numbers["attitude"]])
    expect(page.locator("#case-list .phone")).to_have_text("139****2222")
    page.click(f"text={numbers['attitude']}")
    expect(page.locator("#facts")).to_contain_text("139****2222")
    expect(page.locator("#transcript")).to_contain_text("139****2222")
    assert "13900002222" not in page.content()
    expect(page.locator("#actions")).to_have_count(0)  # reading only
    response = page.goto("/failures")
    assert response.status == 403
    expect(page.locator("#refused")).to_have_text("您的角色无权查看此页面")
    assert page.goto(f"/cases/{numbers['stranded']}").status == 404  # another's case is not shown, nor said to exist
    page.goto("/training")
    assert page.locator(".trainee h2").all_text_contents() == ["amy"]
    posted = page.request.post(f"/cases/{numbers['attitude']}/close", form={"csrf_token": "x"}, max_redirects=0)
    assert posted.status == 403


def test_training_results_and_one_session_with_its_scoring(page, server):
    sign_in(page, "lily", target="/login?next=/training")
    assert page.locator(".trainee h2").all_text_contents() == ["amy", "bob"]
    page.locator(".trainee").first.locator("tbody a").first.click()
    expect(page.locator("h1")).to_contain_text("amy")
    expect(page.locator("#session-score")).to_contain_text("/100")
    expect(page.locator(".turn").first).to_contain_text("本轮得分")
    expect(page.locator(".turn li").first).to_have_text(re.compile(r"^[✓✗] "))


def test_signing_out_ends_the_session(page, server):
    sign_in(page, "lily")
    page.click("text=退出")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))


def test_the_content_as_shipped_with_its_origins_and_the_state_machine(page, server):
    sign_in(page, "lily", target="/login?next=/content")
    page.click("text=运价问题")
    expect(page.locator("#machine svg g.state")).to_have_count(5)
    expect(page.locator("#machine svg path.edge")).to_have_count(6)  # begin, check (a disputed charge), two options, two steps on
    expect(page.locator("#texts tr.manual .origin").first).to_contain_text("手册")
    expect(page.locator("#texts tr.draft .origin").first).to_have_text("草稿")
