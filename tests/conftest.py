"""Shared fixtures: the shipped content, a fresh SQLite file, a real PostgreSQL server, the Telegram emulator."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import settings

from dialogs.content import DEFAULT_DIR, load_content

# The suite tries the same random examples on every run, so a red CI is a change's doing, not a draw's;
# `./dev test --hypothesis-profile=explore tests/dialogs/test_engine_properties.py` searches new ones.
settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("fixed")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def content():
    return load_content(DEFAULT_DIR)


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'kefu.db'}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """Starts a throwaway PostgreSQL server on 127.0.0.1 for the test session; yields its base URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    if not found[-1]:
        pytest.fail("PostgreSQL server binaries not found: install the 'postgresql' package (.ci/run does)")
    bindir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="kefu-pg-"))
    data = root / "data"
    # initdb refuses to run as root, so the server runs as the postgres user when we are root.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
        os.chmod(root, 0o700)
    port = _free_port()
    subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                              "--locale=C.UTF-8"], check=True, capture_output=True)
    subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                              f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the session's server."""
    import psycopg

    name = f"kefu_{time.time_ns()}"
    with psycopg.connect(postgres_server.replace("+psycopg", "") + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request):
    """Runs a storage test once on SQLite and once on a real PostgreSQL server."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(scope="session")
def emulator():
    """The Telegram Bot API emulator and the proxy that fills its gaps (tests/telegram_harness.py)."""
    from telegram_harness import Emulator, Proxy

    emulator = Emulator()
    proxy = Proxy(emulator)
    yield emulator, proxy
    proxy.close()
    emulator.close()
