"""The event loop ``serve`` runs on (hub/event_loop.py): uvloop by default, asyncio on request."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from hub.event_loop import EventLoopError, new_event_loop, resolve
from tests.conftest import ROOT
from tests.test_crash_safety import free_port


def test_resolve_choices():
    assert resolve("auto") == "uvloop"  # uvloop is in requirements.txt
    assert resolve("") == "uvloop"
    assert resolve("UVLOOP") == "uvloop"
    assert resolve("asyncio") == "asyncio"
    with pytest.raises(EventLoopError, match="unknown event loop"):
        resolve("trio")


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert resolve("auto") == "asyncio"
    with pytest.raises(EventLoopError, match="not installed"):
        resolve("uvloop")


def test_new_event_loop_gives_the_kind_named():
    for choice, module in (("uvloop", "uvloop"), ("asyncio", "asyncio")):
        loop, name = new_event_loop(choice)
        try:
            assert name == choice
            assert type(loop).__module__.split(".")[0] == module
            assert loop.run_until_complete(asyncio.sleep(0, result=42)) == 42
        finally:
            loop.close()


def _serve(tmp_path, *flags: str, env_extra: dict[str, str] | None = None) -> tuple[int, str]:
    """Start ``python -m hub serve`` with ``flags``, wait for /healthz, stop it; (exit code, its log)."""
    port = free_port()
    env = dict(os.environ, HUB_LOG_LEVEL="INFO", **(env_extra or {}))
    env.pop("HUB_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--db", f"sqlite+aiosqlite:///{tmp_path}/loop.db",
                             "--port", str(port), *flags], cwd=ROOT, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            if proc.poll() is None:
                raise AssertionError("hub did not become healthy")
    finally:
        if proc.poll() is None:
            proc.terminate()
        _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def test_serve_runs_on_uvloop_by_default_and_asyncio_on_request(tmp_path):
    rc, log = _serve(tmp_path)
    assert "event loop: uvloop (uvloop.Loop)" in log, log
    rc, log = _serve(tmp_path, "--loop", "asyncio")
    assert "event loop: asyncio (asyncio.unix_events._UnixSelectorEventLoop)" in log, log


def test_serve_refuses_an_unknown_loop_from_the_environment(tmp_path):
    rc, log = _serve(tmp_path, env_extra={"HUB_EVENT_LOOP": "trio"})
    assert rc == 2
    assert "unknown event loop 'trio'" in log
