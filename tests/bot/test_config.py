"""Settings and start-up errors: every bad setting, an unreachable database, a missing driver and a
refused token are one line naming the setting, with exit code 2; a traceback only with --debug."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.config import Settings, SettingsError, load_settings
from telegram_harness import BotApiStub, free_port


def kefu(args: list[str], tmp_path, env: dict | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    """Runs the real kefu command in tmp_path, with only the given settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "TELEGRAM_"))}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, input=stdin, capture_output=True,
                          text=True, env={**clean, **(env or {})}, timeout=120)


def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_database_url_that_is_no_url_is_named(tmp_path):
    line = one_line(kefu(["cases"], tmp_path, {"KEFU_DATABASE_URL": "garbage"}))
    assert "KEFU_DATABASE_URL in the environment" in line and "expected a database URL" in line


def test_a_number_setting_that_is_no_number_is_named(tmp_path):
    line = one_line(kefu(["chat"], tmp_path, {"KEFU_GRACE_HOURS": "abc"}))
    assert line == "kefu: KEFU_GRACE_HOURS in the environment is 'abc': expected a number"


def test_an_unreachable_postgresql_is_one_line_without_the_password(tmp_path):
    url = f"postgresql+psycopg://kefu:s3cret@127.0.0.1:{free_port()}/kefu"
    line = one_line(kefu(["cases"], tmp_path, {"KEFU_DATABASE_URL": url}))
    assert "cannot open the database" in line and "KEFU_DATABASE_URL" in line and "refused" in line
    assert "s3cret" not in line


def test_a_driver_kefu_does_not_install_is_named(tmp_path):
    line = one_line(kefu(["cases"], tmp_path, {"KEFU_DATABASE_URL": "postgresql+psycopg2://u@localhost/kefu"}))
    assert "KEFU_DATABASE_URL" in line and "driver for postgresql+psycopg2 is not installed" in line


def test_plain_postgresql_urls_use_the_driver_kefu_installs():
    assert Settings(database_url="postgresql://u@db/kefu").database_url == "postgresql+psycopg://u@db/kefu"


def test_a_missing_database_is_not_made_by_a_command_that_only_reads(tmp_path):
    line = one_line(kefu(["cases"], tmp_path))
    assert f"no database at {tmp_path / 'kefu.db'}" in line
    assert not (tmp_path / "kefu.db").exists()


def test_kefu_chat_says_where_it_makes_a_new_database(tmp_path):
    result = kefu(["chat", "--user", "a"], tmp_path, stdin="帮助\n")
    assert result.returncode == 0, result.stderr
    assert f"kefu: new database {tmp_path / 'kefu.db'}" in result.stderr
    assert (tmp_path / "kefu.db").exists()


def test_a_bad_value_in_kefu_toml_names_the_file_and_key(tmp_path):
    (tmp_path / "kefu.toml").write_text('grace_hours = "soon"\ndatabse_url = "sqlite:///x.db"\n'
                                        '[[staff]]\ntelegram_id = "me"\n')
    result = kefu(["cases"], tmp_path)
    assert result.returncode == 2
    toml = tmp_path / "kefu.toml"
    assert sorted(result.stderr.strip().splitlines()) == sorted([
        f"kefu: grace_hours in {toml} is 'soon': expected a number",
        f"kefu: databse_url in {toml}: not a kefu setting (did you mean database_url?)",
        f"kefu: staff[0].telegram_id in {toml} is 'me': expected a whole number",
    ])


def test_kefu_toml_that_is_no_toml_is_one_line(tmp_path):
    (tmp_path / "kefu.toml").write_text("grace_hours = \n")
    line = one_line(kefu(["cases"], tmp_path))
    assert line.startswith(f"kefu: {tmp_path / 'kefu.toml'} is not valid TOML: ") and "line 1" in line


def test_a_missing_config_file_named_by_kefu_config_is_an_error(tmp_path):
    line = one_line(kefu(["cases"], tmp_path, {"KEFU_CONFIG": str(tmp_path / "etc" / "kefu.toml")}))
    assert line == f"kefu: KEFU_CONFIG names {tmp_path / 'etc' / 'kefu.toml'}, which is not a file"


def test_the_environment_wins_over_kefu_toml_and_is_named(tmp_path, monkeypatch):
    (tmp_path / "kefu.toml").write_text("grace_hours = 3\ntelegram_port = 8443\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEFU_CONFIG", raising=False)
    monkeypatch.setenv("KEFU_TELEGRAM_PORT", "70000")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.lines == ["KEFU_TELEGRAM_PORT in the environment is '70000': expected a number of at most 65535"]
    monkeypatch.setenv("KEFU_TELEGRAM_PORT", "88")
    settings = load_settings()
    assert (settings.grace_hours, settings.telegram_port) == (3.0, 88)
    assert settings.origin("grace_hours") == f"grace_hours in {tmp_path / 'kefu.toml'}"


def test_a_relative_sqlite_file_in_kefu_toml_lives_beside_it(tmp_path, monkeypatch):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "kefu.toml").write_text('database_url = "sqlite:///data/kefu.db"\ncontent_dir = "content"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEFU_CONFIG", str(etc / "kefu.toml"))
    monkeypatch.delenv("KEFU_DATABASE_URL", raising=False)
    monkeypatch.delenv("KEFU_CONTENT_DIR", raising=False)
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{etc / 'data' / 'kefu.db'}"
    assert settings.content_dir == etc / "content"


def test_a_token_that_cannot_be_one_is_refused_without_showing_it(tmp_path):
    line = one_line(kefu(["telegram"], tmp_path, {"TELEGRAM_BOT_TOKEN": "not-a-token-at-all"}))
    assert "TELEGRAM_BOT_TOKEN in the environment" in line and "not-a-token" not in line


def test_an_unreachable_bot_api_is_one_line(tmp_path):
    env = {"TELEGRAM_BOT_TOKEN": "123456:MADE-UP", "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    line = one_line(kefu(["telegram"], tmp_path, env))
    assert "cannot reach the Telegram Bot API" in line and "MADE-UP" not in line


@pytest.fixture
def refusing_bot_api():
    """A Bot API that refuses every token, as Telegram does a made-up one."""
    stub = BotApiStub(accept=False)
    yield stub.url
    stub.close()


def test_a_refused_token_is_one_line(tmp_path, refusing_bot_api):
    env = {"TELEGRAM_BOT_TOKEN": "123456:MADE-UP", "TELEGRAM_API_BASE_URL": refusing_bot_api}
    line = one_line(kefu(["telegram"], tmp_path, env))
    assert line == ("kefu: Telegram refused TELEGRAM_BOT_TOKEN (TELEGRAM_BOT_TOKEN in the environment): "
                    "Unauthorized; check it with @BotFather (/token)")


def test_debug_shows_the_traceback(tmp_path):
    url = f"postgresql+psycopg://kefu@127.0.0.1:{free_port()}/kefu"
    result = kefu(["--debug", "cases"], tmp_path, {"KEFU_DATABASE_URL": url})
    assert result.returncode == 1 and "Traceback" in result.stderr and "OperationalError" in result.stderr


def test_a_status_kefu_does_not_know_is_refused(tmp_path):
    result = kefu(["cases", "--status", "bogus"], tmp_path)
    assert result.returncode == 2 and "'bogus' is not one of" in result.stderr


def test_sqlite_synchronous_is_set_on_each_connection_and_checked(tmp_path):
    from sqlalchemy import text

    from bot.storage.database import open_database

    for value, pragma in (("normal", 1), ("FULL", 2)):
        db = open_database(Settings(database_url=f"sqlite:///{tmp_path / value}.db", sqlite_synchronous=value))
        with db.connect() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar() == pragma
        db.dispose()
    line = one_line(kefu(["chat"], tmp_path, {"KEFU_SQLITE_SYNCHRONOUS": "off"}))
    assert line == "kefu: KEFU_SQLITE_SYNCHRONOUS in the environment is 'off': expected normal or full"
