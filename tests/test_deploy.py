"""deploy/: the systemd units pass systemd-analyze verify, and the example kefu.toml files pass
kefu doctor (the branch's on SQLite, the group's against the tests' PostgreSQL)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from telegram_harness import BotApiStub

DEPLOY = REPO / "deploy"


@pytest.fixture(scope="module")
def bot_api():
    stub = BotApiStub(accept=True)
    yield stub.url
    stub.close()


@pytest.mark.parametrize("unit, name", [("kefu.service", "kefu.service"), ("kefu@.service", "kefu@8441.service"),
                                        ("kefu-worker@.service", "kefu-worker@1.service")])
def test_the_units_pass_systemd_analyze_verify(unit, name, tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not found: install Debian's systemd package (.ci/run does)"
    kefu = Path(sys.executable).parent / "kefu"  # where ./dev installed kefu, for /opt/kefu/.venv/bin/kefu
    text = (DEPLOY / unit).read_text()
    assert "/opt/kefu/.venv/bin/kefu --log-format json telegram" in text
    (tmp_path / name).write_text(text.replace("/opt/kefu/.venv/bin/kefu", str(kefu)))
    result = subprocess.run([analyze, "verify", str(tmp_path / name)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr  # warnings count as failures


def doctor(config: Path, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "TELEGRAM_"))}
    return subprocess.run([sys.executable, "-m", "bot", "doctor"], cwd=config.parent, capture_output=True, text=True,
                          env={**clean, "KEFU_CONFIG": str(config), **env}, timeout=120)


def test_the_branch_config_passes_kefu_doctor(tmp_path, bot_api):
    config = tmp_path / "kefu.toml"
    config.write_text((DEPLOY / "branch" / "kefu.toml").read_text()
                      .replace("sqlite:////var/lib/kefu/kefu.db", f"sqlite:///{tmp_path / 'kefu.db'}"))
    result = doctor(config, {"TELEGRAM_BOT_TOKEN": "123456:BRANCH", "TELEGRAM_API_BASE_URL": bot_api})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout and "ok    staff     2 staff, 2 staff chat(s)" in result.stdout
    assert "long polling" in result.stdout


def test_the_group_config_passes_kefu_doctor_against_postgresql(tmp_path, bot_api, postgres_url):
    config = tmp_path / "kefu.toml"
    shutil.copy(DEPLOY / "group" / "kefu.toml", config)
    env = {"TELEGRAM_BOT_TOKEN": "123456:GROUP", "TELEGRAM_API_BASE_URL": bot_api,
           "KEFU_TELEGRAM_SECRET_TOKEN": "shared-by-every-worker", "KEFU_DATABASE_URL": postgres_url}
    result = doctor(config, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warn" not in result.stdout.replace("warn  disk", ""), result.stdout
    assert "webhook https://kefu.example.com/telegram" in result.stdout
    assert "ok    schema    empty: kefu makes its tables at first start" in result.stdout
