"""The archive export command as an operator pipes it (real subprocesses, real databases)."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

from sqlalchemy import select

from hub.accounts import upsert_account
from hub.archive.store import ArchiveWriter, ToArchive
from hub.clock import Clock
from hub.db import Database
from hub.messages import Text
from hub.models import AuditEntry
from tests.conftest import ROOT


async def _archive(db_url: str, n: int) -> None:
    db = Database(db_url)
    try:
        await db.create_schema(True)
        await upsert_account(db, Clock(), id="a1", platform="oa", receive_id="wxAPPID1")
        writer = ArchiveWriter(db, Clock())
        await writer.save([ToArchive("a1", Text(channel="oa", peer_id=f"o{i % 20}", sent_at=1_700_000_000 + i,
                                                msg_id=f"m{i}", content="您好，我想问一下发货时间" * 8))
                           for i in range(n)])
    finally:
        await db.dispose()


async def _audits(db_url: str) -> list:
    db = Database(db_url)
    try:
        async with db.read() as conn:
            return (await conn.execute(select(AuditEntry.__table__).where(
                AuditEntry.__table__.c.action == "export.archive"))).all()
    finally:
        await db.dispose()


async def test_an_export_piped_into_head_stops_quietly_and_is_audited(db_url):
    """``archive export | head`` closes the pipe early: the command died with a BrokenPipeError
    traceback, and before writing its access-audit entry, so messages left the archive unaudited.
    It now stops quietly (non-zero: the export is incomplete) and audits what it wrote."""
    await _archive(db_url, 3000)  # ~1 MB of JSON Lines: far past what a pipe buffers
    proc = subprocess.Popen([sys.executable, "-m", "hub", "archive", "export", "--db", db_url], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = json.loads(proc.stdout.readline())
    proc.stdout.close()  # what `head -1` does
    _out, err = proc.communicate(timeout=60)
    err = err.decode()
    assert first["text"].startswith("您好") and first["peer_id"] == "o0"
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode not in (0, None)
    [audit] = await _audits(db_url)
    detail = json.loads(audit.detail)
    assert detail["format"] == "jsonl" and 1 <= detail["messages"] < 3000, detail


def test_accounts_list_text_callback_url_with_a_trailing_slash_base(tmp_path):
    """`--base-url https://hub.example.com/` (as copied from a browser) printed
    `https://hub.example.com//callbacks/...` in the text listing (the --json one was right): pasted
    into the platform's console, the URL verification went to a path the hub does not serve."""
    db = f"sqlite:///{tmp_path}/acc.db"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hub", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)

    r = cli("accounts", "add", "--db", db, "--id", "brand-oa", "--platform", "oa", "--receive-id", "wxAPPID1",
            "--base-url", "https://hub.example.com/")
    assert r.returncode == 0, r.stderr
    assert "\tcallback=https://hub.example.com/callbacks/oa/brand-oa\t" in r.stdout, r.stdout
    r = cli("accounts", "list", "--db", db, "--base-url", "https://hub.example.com/")
    assert "\tcallback=https://hub.example.com/callbacks/oa/brand-oa\t" in r.stdout, r.stdout
    r = cli("accounts", "list", "--db", db, "--json", "--base-url", "https://hub.example.com/")
    assert json.loads(r.stdout)[0]["callback_url"] == "https://hub.example.com/callbacks/oa/brand-oa"


def test_an_empty_since_is_refused_not_read_as_everything(tmp_path):
    """`--since "$SINCE"` with the variable unset passed an empty value, which was read as no --since
    at all: the whole archive was exported (and audited as such) instead of the recent messages the
    operator asked for. An empty or blank value is a bad value, like any other unreadable one."""
    db = f"sqlite:///{tmp_path}/since.db"
    for value in ("", "  "):
        r = subprocess.run([sys.executable, "-m", "hub", "archive", "export", "--db", db, "--since", value], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.startswith(f"scrm-hub: --since {value!r}: not a time"), r.stderr
        assert r.stdout == ""


async def test_the_csv_export_opens_in_excel_as_utf8(db_url):
    """The CSV export is for spreadsheets, but had no BOM: Excel, which most supervisors open it
    with, read the customers' Chinese as the ANSI code page (mojibake). It starts with one now, like
    the conversation export of the search page and the audit log's CSV."""
    await _archive(db_url, 2)
    r = subprocess.run([sys.executable, "-m", "hub", "archive", "export", "--db", db_url, "--format", "csv"], cwd=ROOT,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode("utf-8")
    assert text.startswith("\ufeffid,conversation_id,"), text[:40]
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 2 and rows[0]["text"].startswith("您好")
    r = subprocess.run([sys.executable, "-m", "hub", "archive", "export", "--db", db_url], cwd=ROOT,
                       capture_output=True, timeout=60)
    assert not r.stdout.startswith(b"\xef\xbb\xbf")  # JSON Lines: the exact record, no BOM


async def test_a_command_line_search_is_in_the_access_audit(db_url):
    """Every search of the archive is in the access audit (docs/privacy.md), and the command line's
    export is; `archive search` printed messages from the whole archive and left no entry."""
    await _archive(db_url, 3)
    r = subprocess.run([sys.executable, "-m", "hub", "archive", "search", "发货 13812345678", "--db", db_url],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "hub", "archive", "search", "发货", "--limit", "2", "--db", db_url],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "2 hit" in r.stderr, r.stderr
    db = Database(db_url)
    try:
        async with db.read() as conn:
            rows = (await conn.execute(select(AuditEntry.__table__).where(
                AuditEntry.__table__.c.action == "search").order_by(AuditEntry.__table__.c.id))).all()
    finally:
        await db.dispose()
    assert [(row.kind, row.target, row.actor_name.startswith("cli:")) for row in rows] == [("access", "archive", True)] * 2
    first, second = (json.loads(row.detail) for row in rows)
    assert "13812345678" not in first["q"] and first["results"] == 0  # the query masked, as the API's
    assert second["q"] == "发货" and second["results"] == 2


def test_a_database_that_cannot_be_opened_is_one_line_not_a_traceback(tmp_path):
    """A PostgreSQL server that is down (or a wrong port) and a SQLite file in a directory that does
    not exist: accounts and archive export died with a 30-line traceback (asyncpg's, SQLAlchemy's);
    like any other unusable setting they now say so in one scrm-hub: line and exit non-zero."""
    cases = (("accounts", "list", "--db", "postgresql://postgres@127.0.0.1:1/none"),
             ("archive", "export", "--db", f"sqlite:///{tmp_path}/no/such/dir/hub.db"))
    for args in cases:
        r = subprocess.run([sys.executable, "-m", "hub", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.startswith("scrm-hub: cannot open the database: "), r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


async def test_accounts_add_checks_what_the_console_checks(db_url):
    """`accounts add` ran only upsert_account's checks, not those the 平台账号 page's API adds: a name
    over the column (a 30-line traceback on PostgreSQL, varchar) or a CorpID/AppID with a blank in it
    (stored, and every callback's receive-id check failed) went in. They are refused in one line."""
    def add(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hub", "accounts", "add", "--db", db_url, "--id", "brand-oa",
                               "--platform", "oa", *extra], cwd=ROOT, capture_output=True, text=True, timeout=60)

    for extra, why in ((("--receive-id", "wxAPPID1", "--name", "品牌" * 100), "name: at most"),
                       (("--receive-id", "wx APPID1"), "CorpID / AppID"),
                       (("--receive-id", "wxAPPID1", "--secret", "s" * 300), "secret: at most")):
        r = add(*extra)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        last = r.stderr.strip().splitlines()[-1]  # (after the generated-key notice of a fresh database)
        assert last.startswith("error: ") and why in last, r.stderr
    r = add("--receive-id", "wxAPPID1", "--name", "品牌公众号")
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "hub", "accounts", "list", "--db", db_url, "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    [a] = json.loads(r.stdout)
    assert (a["name"], a["receive_id"]) == ("品牌公众号", "wxAPPID1")
