"""./dev on machines that are not ready: a Python too old or without venv stops it at once with one
line saying what to install; a half-made .venv is rebuilt, not reused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO


def fake_python(folder: Path, script: str) -> dict:
    """An environment whose python3 is the given shell script."""
    folder.mkdir(exist_ok=True)
    python = folder / "python3"
    python.write_text(f"#!/bin/sh\n{script}\n")
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    return {**env, "PATH": f"{folder}:{env['PATH']}"}


def dev(args: list[str], env: dict, where: Path = REPO, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run([str(where / "dev"), *args], env=env, capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - started


def test_python_3_10_stops_at_once_saying_what_to_install(tmp_path):
    # As Ubuntu 22.04's python3 answers; dev must stop before pip, which would spin for minutes.
    env = fake_python(tmp_path / "bin", 'case "$1" in --version) echo "Python 3.10.12";; *) echo 3.10.12;; esac')
    result, took = dev(["chat"], env)
    assert took < 5, took
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("./dev: python3 is Python 3.10.12; kefu needs 3.11 or newer: install Python 3.11")
    assert "python3.11-venv" in lines[0]


def test_a_python_without_venv_stops_at_once_saying_what_to_install(tmp_path):
    # Debian's python3 without python3-venv: ensurepip is missing.
    shadow = tmp_path / "shadow" / "ensurepip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('ensurepip is not available')\n")
    env = fake_python(tmp_path / "bin", f'PYTHONPATH={shadow.parent} exec {sys.executable} "$@"')
    result, took = dev(["validate"], env)
    assert took < 5, took
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "cannot make virtual environments (no venv/ensurepip)" in result.stderr and "python3-venv" in result.stderr


def test_a_half_made_venv_is_rebuilt(tmp_path):
    # A project of the same shape as kefu's, small enough to install in seconds.
    project = tmp_path / "project"
    (project / "bot").mkdir(parents=True)
    shutil.copy(REPO / "dev", project / "dev")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "kefu"\nversion = "0"\nrequires-python = ">=3.11"\n'
        '[project.optional-dependencies]\ntest = []\n[project.scripts]\nkefu = "bot.cli:main"\n'
        '[tool.setuptools.packages.find]\ninclude = ["bot*"]\n')
    (project / "bot" / "__init__.py").write_text("")
    (project / "bot" / "cli.py").write_text("import sys\ndef main():\n    print('kefu ran:', *sys.argv[1:])\n")
    # What a failed first run on Debian without python3-venv leaves: a python, no pip.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True)
    env = fake_python(tmp_path / "bin", f'exec {sys.executable} "$@"')
    result, _ = dev(["validate"], env, where=project)
    assert result.returncode == 0, result.stderr
    assert "./dev: rebuilding .venv: it has no pip" in result.stderr
    assert "./dev: installing kefu into .venv" in result.stderr and "./dev: installed in" in result.stderr
    assert result.stdout.strip() == "kefu ran: validate"
    again, took = dev(["validate"], env, where=project)  # now whole: reused, nothing installed
    assert again.returncode == 0 and again.stderr == "" and took < 5
