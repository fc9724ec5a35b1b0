"""``serve --workers N``: refused where it cannot be correct, with a clear message; the worker
command line is the supervisor's minus ``--workers``."""
from __future__ import annotations

import subprocess
import sys

import pytest

from hub.workers import WorkersConfigError, check_workers, worker_argv
from tests.conftest import ROOT


def test_several_workers_need_postgres_and_redis():
    with pytest.raises(WorkersConfigError, match="PostgreSQL"):
        check_workers(2, "sqlite+aiosqlite:///hub.db", "redis://127.0.0.1:6379/0")
    with pytest.raises(WorkersConfigError, match="Redis"):
        check_workers(2, "postgresql+asyncpg://h/db", "")
    with pytest.raises(WorkersConfigError, match="at least 1"):
        check_workers(0, "postgresql+asyncpg://h/db", "redis://r")
    check_workers(1, "sqlite+aiosqlite:///hub.db", "")  # one supervised process is fine anywhere
    check_workers(4, "postgresql+asyncpg://h/db", "redis://r")


def test_worker_command_line_drops_workers_flag():
    assert worker_argv(["serve", "--workers", "3", "--port", "8080"]) == ["serve", "--port", "8080"]
    assert worker_argv(["serve", "--workers=3", "--db", "x"]) == ["serve", "--db", "x"]


def test_cli_refuses_several_workers_on_sqlite(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hub", "serve", "--workers", "2", "--db",
                           f"sqlite+aiosqlite:///{tmp_path}/hub.db"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "needs PostgreSQL" in proc.stderr and "Traceback" not in proc.stderr
