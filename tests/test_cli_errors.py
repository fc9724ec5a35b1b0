"""What the command line does with bad settings and failures: one `scrm-hub: ...` line and a non-zero
exit, not a traceback, a silently wrong value or lost data (real subprocesses, as tests/test_cli.py)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from sqlalchemy import select, text

from hub import schema
from hub.config import load_config
from hub.db import Database
from hub.models import AuditEntry
from tests.conftest import ON_POSTGRES, ROOT

KEY = "a-test-secret-key-of-32-characters"
HEAD = sorted(schema.DEFAULT.heads())[0]


def hub_cli(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:  # noqa: ANN003
    full = {k: v for k, v in os.environ.items() if not k.startswith("HUB_") or k.startswith("HUB_TEST")}
    full.update(env or {})
    kw.setdefault("capture_output", True)
    return subprocess.run([sys.executable, "-m", "hub", *args], cwd=ROOT, text=True, timeout=120, env=full, **kw)


def one_line(r: subprocess.CompletedProcess, why: str, code: int = 1) -> None:
    """Exit ``code``, no traceback, and the last line of stderr (after any log lines) is the error."""
    assert r.returncode == code and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("scrm-hub: ") and why in last, r.stderr


def free_port() -> int:
    for port in range(18300, 18400):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18300-18399")


def config_error(tmp_path, body: str) -> str:
    path = tmp_path / "hub.toml"
    path.write_text(body)
    with pytest.raises(ValueError) as exc:
        load_config(str(path), env={})
    return str(exc.value)


def test_config_file_values_are_type_checked(tmp_path):
    """An int api_token (every authenticated request a 500), `port = true` (port 1), a fractional port
    (truncated), a non-list trusted_proxies and non-table [hub] / [settings] (tracebacks), and keys the
    hub does not know (silently ignored) are refused, naming the key."""
    for body, why in (("[hub]\napi_token = 12345\n", "[hub] api_token: 12345 must be text"),
                      ("[hub]\nport = true\n", "[hub] port: True is not an integer"),
                      ("[hub]\nport = 18302.7\n", "[hub] port: 18302.7 is not an integer"),
                      ("[hub]\nport = 70000\n", "[hub] port: 70000 is out of range"),
                      ("[hub]\ntrusted_proxies = 5\n", "[hub] trusted_proxies: write a list"),
                      ('[hub]\ntrusted_proxies = ["10.0.0.0/8", "proxy"]\n', "'proxy' is not an IP address"),
                      ('[hub]\nauto_migrate = "maybe"\n', "[hub] auto_migrate: 'maybe' is not true or false"),
                      ("[hub]\napi_timeout = nan\n", "[hub] api_timeout: nan is not a finite number"),
                      ("hub = 5\n", "hub must be a table"),
                      ("settings = 5\n", "settings must be a table"),
                      ("[hub]\nprot = 9000\n", "[hub]: unknown key prot"),
                      ("[hubb]\nport = 9000\n", "unknown table or key hubb")):
        assert why in config_error(tmp_path, body), body
    path = tmp_path / "good.toml"
    path.write_text('[hub]\nport = 18302\napi_timeout = 5\nauto_migrate = false\n'
                    'trusted_proxies = ["10.0.0.0/8", "::1"]\nlog_level = "debug"\n[settings]\nx = 1\n')
    config = load_config(str(path), env={})
    assert (config.port, config.api_timeout, config.auto_migrate) == (18302, 5.0, False)
    assert config.trusted_proxies == ("10.0.0.0/8", "::1") and config.log_level == "DEBUG"
    assert config.settings == (("x", 1),)


def test_environment_values_are_checked_naming_the_variable():
    for env, why in (({"HUB_PORT": "abc"}, "HUB_PORT: 'abc' is not an integer"),
                     ({"HUB_PORT": "99999"}, "HUB_PORT: 99999 is out of range (must be between 0 and 65535)"),
                     ({"HUB_AUTO_MIGRATE": "maybe"}, "HUB_AUTO_MIGRATE: 'maybe' is not true or false"),
                     ({"HUB_MAX_BODY_BYTES": "0"}, "HUB_MAX_BODY_BYTES: 0 is out of range"),
                     ({"HUB_OUTBOUND_MAX_ATTEMPTS": "-1"}, "HUB_OUTBOUND_MAX_ATTEMPTS: -1 is out of range"),
                     ({"HUB_API_TIMEOUT": "inf"}, "HUB_API_TIMEOUT: inf is not a finite number"),
                     ({"HUB_JOB_LEASE": "nan"}, "HUB_JOB_LEASE: nan is not a finite number"),
                     ({"HUB_TRUSTED_PROXIES": "10.0.0.1, bogus"}, "HUB_TRUSTED_PROXIES: 'bogus' is not an IP"),
                     ({"HUB_LOG_LEVEL": "bogus"}, "HUB_LOG_LEVEL: unknown log level 'BOGUS'")):
        with pytest.raises(ValueError) as exc:
            load_config(env=env)
        assert why in str(exc.value), (env, exc.value)
    config = load_config(env={"HUB_AUTO_MIGRATE": "off", "HUB_PORT": " 0 ", "HUB_LOG_LEVEL": "warning",
                              "HUB_TRUSTED_PROXIES": "10.0.0.0/8,192.168.1.1"})
    assert (config.auto_migrate, config.port, config.log_level) == (False, 0, "WARNING")
    assert config.trusted_proxies == ("10.0.0.0/8", "192.168.1.1")
    with pytest.raises(ValueError, match="--port: 70000 is out of range"):
        load_config(env={}, port=70000)


def test_port_is_range_checked(tmp_path):
    for port in ("99999", "-1", "http"):
        r = hub_cli("serve", "--db", f"sqlite:///{tmp_path}/p.db", "--port", port)
        assert r.returncode == 2 and "argument --port" in r.stderr and "0-65535" in r.stderr, r.stderr
    one_line(hub_cli("serve", "--db", f"sqlite:///{tmp_path}/p.db", env={"HUB_PORT": "99999"}),
             "HUB_PORT: 99999 is out of range")


def test_serve_start_up_failures_are_one_line(tmp_path, db_url):
    """A database behind head with HUB_AUTO_MIGRATE=0 (the promised "run `python -m hub db upgrade`"),
    one at a revision this hub does not know, a server down, a directory that does not exist, a port
    in use (and "ready" not logged before the bind), a host that is none, a short secret key."""
    port = str(free_port())
    assert hub_cli("db", "upgrade", "--db", db_url).returncode == 0
    assert hub_cli("db", "downgrade", "--db", db_url, "--to", "0013_account_message_mode").returncode == 0
    one_line(hub_cli("serve", "--db", db_url, "--port", port, env={"HUB_AUTO_MIGRATE": "0"}),
             "run `python -m hub db upgrade`")
    assert hub_cli("db", "upgrade", "--db", db_url).returncode == 0
    _set_revision(db_url, "0099_from_the_future")
    one_line(hub_cli("serve", "--db", db_url, "--port", port), "which this version of the hub does not know")
    r = hub_cli("db", "current", "--db", db_url)
    assert r.returncode == 0 and "0099_from_the_future (unknown to this hub" in r.stdout, r.stdout + r.stderr
    sqlite = f"sqlite:///{tmp_path}/fresh.db"
    one_line(hub_cli("serve", "--db", "postgresql://postgres@127.0.0.1:1/none", "--port", port),
             "cannot open the database")
    one_line(hub_cli("serve", "--db", f"sqlite:///{tmp_path}/no/such/dir/x.db", "--port", port),
             "cannot open the database")
    one_line(hub_cli("serve", "--db", sqlite, "--port", port, "--host", "999.1.1.1"), "cannot listen on 999.1.1.1")
    one_line(hub_cli("serve", "--db", sqlite, "--port", port, env={"HUB_SECRET_KEY": "short"}),
             "a secret key needs at least 16 characters")
    one_line(hub_cli("serve", "--db", sqlite, "--port", port, env={"HUB_LOG_LEVEL": "bogus"}), "HUB_LOG_LEVEL")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(port)))
        taken.listen()
        r = hub_cli("serve", "--db", sqlite, "--port", port, env={"HUB_LOG_LEVEL": "INFO"})
    one_line(r, f"cannot listen on 127.0.0.1:{port}: Address already in use")
    assert "scrm-hub ready" not in r.stderr, r.stderr


def _set_revision(db_url: str, rev: str) -> None:
    import asyncio

    async def run() -> None:
        db = Database(db_url)
        try:
            async with db.write() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = :rev"), {"rev": rev})
        finally:
            await db.dispose()
    asyncio.run(run())


def test_commands_report_failures_in_one_line(tmp_path):
    """A :memory: database (built outside the try), a short key, files that are not there."""
    db = f"sqlite:///{tmp_path}/hub.db"
    for url in ("sqlite:///:memory:", "sqlite://"):
        one_line(hub_cli("accounts", "list", "--db", url), "not :memory:")
        one_line(hub_cli("db", "current", "--db", url), "not :memory:")
    one_line(hub_cli("accounts", "add", "--db", db, "--id", "oa1", "--platform", "oa", "--receive-id", "wx1",
                     env={"HUB_SECRET_KEY": "short"}), "a secret key needs at least 16 characters")
    one_line(hub_cli("faq", "import", "--db", db, str(tmp_path / "none.csv")), "No such file or directory")
    one_line(hub_cli("faq", "export", "--db", db, str(tmp_path / "no" / "dir" / "x.csv")), "No such file or directory")


def test_db_commands_report_failures_in_one_line(tmp_path):
    db = f"sqlite:///{tmp_path}/hub.db"
    assert hub_cli("db", "upgrade", "--db", db, "--to", "0005_supervision").returncode == 0
    one_line(hub_cli("db", "upgrade", "--db", db, "--to", "nosuchrev"), "Can't locate revision")
    one_line(hub_cli("db", "downgrade", "--db", db, "--to", "0010_session_bot_started"), "not a valid downgrade target")
    one_line(hub_cli("db", "current", "--db", f"sqlite:///{tmp_path}/no/dir/x.db"), "cannot open the database")
    one_line(hub_cli("db", "upgrade", "--db", "postgresql://postgres@127.0.0.1:1/none"), "cannot open the database")
    one_line(hub_cli("db", "revision", "-m", "x", "--db", "mysql://root@127.0.0.1/x"), "unsupported database 'mysql'")
    r = hub_cli("db", "current", "--db", db)
    assert "0005_supervision (behind head" in r.stdout, r.stdout
    read, write = os.pipe()
    os.close(read)  # `db history | head` with head gone
    try:
        r = hub_cli("db", "history", stdout=write, stderr=subprocess.PIPE, capture_output=False)
    finally:
        os.close(write)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr


async def test_archive_export_that_cannot_be_written_is_still_audited(db_url):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        r = hub_cli("archive", "export", "--db", db_url, "--format", "csv", stdout=full, stderr=subprocess.PIPE,
                    capture_output=False)
    one_line(r, "writing the export failed after 0 messages: No space left on device")
    db = Database(db_url)
    try:
        async with db.read() as conn:
            rows = (await conn.execute(select(AuditEntry.__table__).where(
                AuditEntry.__table__.c.action == "export.archive"))).all()
    finally:
        await db.dispose()
    assert len(rows) == 1 and rows[0].kind == "access"


async def test_downgrade_below_privacy_writes_the_account_secrets_back(db_url, tmp_path):
    """Since 0003 the accounts rows hold no secret: its downgrade dropped account_secrets and left
    every account without Token, EncodingAESKey and secret. They are written back in clear, and
    without the key the downgrade is refused (and nothing changes)."""
    key = {"HUB_SECRET_KEY": KEY}
    r = hub_cli("accounts", "add", "--db", db_url, "--id", "oa1", "--platform", "oa", "--receive-id", "wxAPP1",
                "--token", "tok123", "--secret", "s3cret", env=key)
    assert r.returncode == 0, r.stderr
    aes = r.stdout.split("encoding_aes_key=")[1].split()[0]
    no_key = {"HUB_SECRET_KEY_FILE": str(tmp_path / "none.key")}
    one_line(hub_cli("db", "downgrade", "--db", db_url, "--to", "0002_timer_claims", env=no_key),
             "downgrade below 0003_privacy: the accounts' Tokens, EncodingAESKeys and secrets are stored encrypted")
    one_line(hub_cli("db", "downgrade", "--db", db_url, "--to", "0002_timer_claims",
                     env={"HUB_SECRET_KEY": "another-key-of-enough-length"}), "account oa1: secret encrypted with key")
    assert f"{HEAD} (head)" in hub_cli("db", "current", "--db", db_url).stdout  # refused: nothing changed
    r = hub_cli("db", "downgrade", "--db", db_url, "--to", "0002_timer_claims", env=key)
    assert r.returncode == 0 and "0002_timer_claims" in r.stdout, r.stderr
    db = Database(db_url)
    try:
        async with db.read() as conn:
            rows = (await conn.execute(text("SELECT id, token, encoding_aes_key, secret FROM accounts"))).all()
    finally:
        await db.dispose()
    assert [tuple(row) for row in rows] == [("oa1", "tok123", aes, "s3cret")]
    assert hub_cli("db", "upgrade", "--db", db_url).returncode == 0
    r = hub_cli("accounts", "list", "--db", db_url, env=key)  # sealed again at start, same values
    assert r.returncode == 0 and "token=tok123" in r.stdout and f"encoding_aes_key={aes}" in r.stdout, r.stderr


@pytest.mark.skipif(ON_POSTGRES, reason="a SQLite key file")
def test_downgrade_below_privacy_uses_the_key_file(tmp_path):
    db = f"sqlite:///{tmp_path}/hub.db"
    r = hub_cli("accounts", "add", "--db", db, "--id", "w1", "--platform", "wecom", "--receive-id", "ww1",
                "--token", "tok456")
    assert r.returncode == 0 and (tmp_path / "hub.db.key").exists(), r.stderr
    r = hub_cli("db", "downgrade", "--db", db, "--to", "0002_timer_claims")
    assert r.returncode == 0, r.stderr
    import sqlite3
    with sqlite3.connect(tmp_path / "hub.db") as conn:
        assert conn.execute("SELECT token FROM accounts").fetchall() == [("tok456",)]
