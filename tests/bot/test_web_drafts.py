"""The drafts page (/drafts), in process: every draft with how often customers saw it, a confirmation and a
correction made through its forms and stored with who, a refused correction said plainly, the forms'
token, the filters, and the YAML patch it serves, which applies to a copy of the content and which
`kefu validate` accepts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from starlette.testclient import TestClient

from bot.config import Settings
from bot.drafts import Drafts, apply_patch, read_patch
from bot.service import Service
from bot.web.app import create_app
from dialogs.content import DEFAULT_DIR, load_content
from test_drafts import CLAIMS_WHAT, DAMAGE_WHAT, DAMAGED, GREETING
from test_reports import tell
from test_web_reports import Tables, add_users, signed_in

DEADLINE = "claims.yaml:handling.0.deadline_hours"


@pytest.fixture
def service(sqlite_url):
    """Two customers greeted, one of them asked what happened to their goods (wrong_or_damaged)."""
    service = Service.from_settings(Settings(database_url=sqlite_url))
    tell(service, "a", DAMAGED)
    tell(service, "b", ["货物滞留", "12345678", "13800138000"])
    add_users(service)
    return service


def token(client: TestClient, path: str = "/drafts") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def line(html: str, key: str) -> list[str]:
    """The cells of one draft's row."""
    rows = Tables(html).tables["drafts"]
    keys = re.findall(r'<tr class="draft [a-z]+" id="draft-\d+" data-key="([^"]+)"', html)
    return rows[1 + keys.index(key)]


def test_every_draft_is_listed_with_its_count_and_the_number_still_unconfirmed(service):
    desk = Drafts(service.store.db, service.content)
    page = signed_in(create_app(service), "lily").get("/drafts").text
    assert len(re.findall(r'<tr class="draft unconfirmed"', page)) == len(desk.all()) > 300
    assert f'<span class="tile" id="unconfirmed"><b>{len(desk.unconfirmed())}</b>' in page
    greeting = line(page, GREETING)
    assert greeting[0] == "通用" and greeting[2] == service.content.shared.texts.greeting.text
    assert greeting[3] == "2" and greeting[4].startswith("待确认")  # both customers were greeted
    assert line(page, DAMAGE_WHAT)[:4] == ["发错货、运输质量", line(page, DAMAGE_WHAT)[1], "请问货物出现了什么问题？", "1"]
    assert line(page, CLAIMS_WHAT)[3] == "0"  # the same words, asked in another category
    assert line(page, DEADLINE)[3] == "—"  # staff's deadlines are never sent to customers


def test_a_confirmation_and_a_correction_are_stored_with_who_and_shown_beside_the_text(service):
    app = create_app(service)
    lily, root = signed_in(app, "lily"), signed_in(app, "root")
    answer = lily.post("/drafts/review", data={"csrf_token": token(lily), "key": GREETING, "action": "confirm",
                                               "comment": "可以 <b>用</b>"})
    assert answer.status_code == 303 and answer.headers["location"] == "/drafts"
    answer = root.post("/drafts/review", data={"csrf_token": token(root), "key": DAMAGE_WHAT, "action": "correct",
                                               "correction": "请问货物出了什么问题？", "comment": "更口语",
                                               "status": "unconfirmed", "category": "wrong_or_damaged"})
    assert answer.headers["location"] == "/drafts?status=unconfirmed&category=wrong_or_damaged"  # the filters kept
    desk = Drafts(service.store.db, service.content)
    [confirmed] = desk.history(GREETING)
    assert (confirmed.decision, confirmed.reviewer, confirmed.comment) == ("confirmed", "lily", "可以 <b>用</b>")
    [corrected] = desk.history(DAMAGE_WHAT)
    assert (corrected.decision, corrected.reviewer, corrected.correction, corrected.was) == (
        "corrected", "root", "请问货物出了什么问题？", "请问货物出现了什么问题？")
    page = lily.get("/drafts").text
    word = line(page, GREETING)[4]
    assert word.startswith("已确认") and "lily · " in word and "待写入话术" in word and "说明：可以 <b>用</b>" in word
    assert "可以 &lt;b&gt;用&lt;/b&gt;" in page
    word = line(page, DAMAGE_WHAT)[4]
    assert word.startswith("已修改") and "root · " in word and "改为：请问货物出了什么问题？" in word
    assert f'<span class="tile" id="waiting"><b>2</b>' in page


def test_the_flash_says_what_was_done(service):
    client = signed_in(create_app(service), "lily")
    client.post("/drafts/review", data={"csrf_token": token(client), "key": GREETING, "action": "confirm"})
    assert '<p class="flash" id="flash">已确认：texts.greeting</p>' in client.get("/drafts").text
    assert '<p class="flash"' not in client.get("/drafts").text  # told once


def test_a_correction_the_drafts_refuse_is_said_and_nothing_is_stored(service):
    client = signed_in(create_app(service), "lily")
    answer = client.post("/drafts/review", data={"csrf_token": token(client), "key": DEADLINE, "action": "correct",
                                                 "correction": "0", "status": "unconfirmed"})
    assert answer.status_code == 400
    error = re.search(r'<p class="error" id="draft-error">([^<]*)</p>', answer.text).group(1)
    assert error == f"未保存（{DEADLINE}）：a deadline must be more than 0 hours"
    assert re.search(r'<input name="correction" value="0" size="6">', answer.text)  # what they typed, kept
    answer = client.post("/drafts/review", data={"csrf_token": token(client), "key": GREETING, "action": "correct",
                                                 "correction": "{{ nope }}"})
    assert answer.status_code == 400 and "unknown name &#39;nope&#39;" in answer.text
    answer = client.post("/drafts/review", data={"csrf_token": token(client), "key": "shared.yaml:texts.nothing.text",
                                                 "action": "confirm"})
    assert answer.status_code == 400 and "no draft &#39;shared.yaml:texts.nothing.text&#39;" in answer.text
    desk = Drafts(service.store.db, service.content)
    assert desk.reviews() == {}


def test_a_review_without_the_form_token_or_by_staff_is_refused(service):
    app = create_app(service)
    lily = signed_in(app, "lily")
    for data in ({"key": GREETING, "action": "confirm"}, {"key": GREETING, "action": "confirm", "csrf_token": "guess"}):
        answer = lily.post("/drafts/review", data=data)
        assert answer.status_code == 403 and "表单已失效或来源不明" in answer.text
    amy = signed_in(app, "amy")
    answer = amy.post("/drafts/review", data={"csrf_token": token(amy, "/"), "key": GREETING, "action": "confirm"})
    assert answer.status_code == 403
    for path in ["/drafts", "/drafts/patch.yaml"]:
        answer = amy.get(path)
        assert answer.status_code == 403 and "您的角色无权查看此页面" in answer.text, path
    anonymous = TestClient(app, follow_redirects=False)
    assert anonymous.get("/drafts").headers["location"] == "/login?next=/drafts"
    assert Drafts(service.store.db, service.content).reviews() == {}


def test_the_filters_show_one_status_or_one_category(service):
    client = signed_in(create_app(service), "lily")
    client.post("/drafts/review", data={"csrf_token": token(client), "key": GREETING, "action": "confirm"})
    client.post("/drafts/review", data={"csrf_token": token(client), "key": DEADLINE, "action": "correct", "correction": "8"})
    keys = lambda page: re.findall(r'data-key="([^"]+)"', page)  # noqa: E731
    assert keys(client.get("/drafts?status=confirmed").text) == [GREETING]
    assert keys(client.get("/drafts?status=corrected").text) == [DEADLINE]
    claims = keys(client.get("/drafts?category=claims").text)
    assert claims and all(key.startswith("claims.yaml:") for key in claims) and DEADLINE in claims
    assert keys(client.get("/drafts?status=unconfirmed&category=claims").text) == [k for k in claims if k != DEADLINE]
    general = keys(client.get("/drafts?category=general").text)
    assert GREETING in general and {key.split(":")[0] for key in general} == {"shared.yaml", "other.yaml", "policies.yaml"}
    assert keys(client.get("/drafts?status=stale").text) == []


def test_the_patch_download_applies_to_the_content_and_validates(service, sqlite_url, tmp_path):
    client = signed_in(create_app(service), "lily")
    client.post("/drafts/review", data={"csrf_token": token(client), "key": GREETING, "action": "confirm", "comment": "可以"})
    client.post("/drafts/review", data={"csrf_token": token(client), "key": DEADLINE, "action": "correct", "correction": "8"})
    client.post("/drafts/review", data={"csrf_token": token(client), "key": DAMAGE_WHAT, "action": "correct",
                                        "correction": "请问货物出了什么问题？", "comment": "更口语"})
    answer = client.get("/drafts/patch.yaml")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/yaml; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="kefu-drafts-\d{8}-\d{4}\.yaml"', answer.headers["content-disposition"])
    patch = answer.content.decode("utf-8")
    assert [(c.key, c.decision, c.by) for c in read_patch(patch)] == [
        (GREETING, "confirmed", "lily"), ("wrong_or_damaged.yaml:facts.what.prompt.text", "corrected", "lily"),
        (DEADLINE, "corrected", "lily")]
    folder = tmp_path / "content"
    shutil.copytree(DEFAULT_DIR, folder)
    assert apply_patch(patch, folder) == (3, ["claims.yaml", "shared.yaml", "wrong_or_damaged.yaml"])
    env = {**os.environ, "KEFU_CONTENT_DIR": str(folder)}
    checked = subprocess.run([sys.executable, "-m", "bot", "validate", "--drafts"], capture_output=True, text=True,
                             env=env, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    total = len(Drafts(service.store.db, service.content).all())
    assert f"drafts: {total - 3} of {total} still unconfirmed" in checked.stdout
    patched = load_content(folder)
    assert patched.categories["claims"].handling[0].deadline_hours == 8
    # The page over the patched content: the three are in the content now, and the patch is empty.
    after = signed_in(create_app(Service.from_settings(Settings(database_url=sqlite_url, content_dir=folder))), "lily")
    page = after.get("/drafts").text
    assert line(page, GREETING)[4].startswith("已确认") and "已写入话术" in line(page, GREETING)[4]
    assert line(page, DEADLINE)[4].startswith("已修改") and "原为：" in line(page, DEADLINE)[4]
    assert f'<span class="tile" id="unconfirmed"><b>{total - 3}</b>' in page
    assert read_patch(after.get("/drafts/patch.yaml").text) == []


def test_a_review_of_a_text_changed_since_is_shown_stale_and_left_out_of_the_patch(service, sqlite_url, tmp_path):
    client = signed_in(create_app(service), "lily")
    client.post("/drafts/review", data={"csrf_token": token(client), "key": GREETING, "action": "confirm"})
    folder = tmp_path / "content"
    shutil.copytree(DEFAULT_DIR, folder)
    shared = (folder / "shared.yaml").read_text(encoding="utf-8").replace("您好，欢迎联系盛辉物流客服！", "您好，欢迎您！")
    (folder / "shared.yaml").write_text(shared, encoding="utf-8")
    later = signed_in(create_app(Service.from_settings(Settings(database_url=sqlite_url, content_dir=folder))), "lily")
    assert re.findall(r'data-key="([^"]+)"', later.get("/drafts?status=stale").text) == [GREETING]
    word = line(later.get("/drafts").text, GREETING)[4]
    assert word.startswith("原文已变，需重新审核") and "lily · " in word
    assert read_patch(later.get("/drafts/patch.yaml").text) == []
