"""The command line as an operator uses it (real subprocesses, real SQLite files)."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

from hub.app import HUB, create_app
from tests.conftest import ROOT, WECOM
from tests.helpers import post
from tests.wechat_client import text_xml


def hub_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_help_lists_commands():
    out = hub_cli("--help").stdout
    for word in ("serve", "accounts", "archive"):
        assert word in out
    assert "--demo" in hub_cli("serve", "--help").stdout


def test_accounts_add_and_list_json(tmp_path):
    db = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    r = hub_cli("accounts", "add", "--db", db, "--id", "brand-oa", "--platform", "oa", "--receive-id", "wxAPPID1",
                "--secret", "s3cret", "--name", "品牌公众号", "--mode", "safe")
    assert r.returncode == 0 and "message_mode=safe" in r.stdout, r.stderr
    r = hub_cli("accounts", "add", "--db", db, "--id", "bad", "--platform", "wecom", "--receive-id", "ww1",
                "--aes-key", "short")
    assert r.returncode == 2 and "EncodingAESKey" in r.stderr
    for token in ("门店令牌abc", "１２３４５６"):  # not what the platforms' consoles take
        r = hub_cli("accounts", "add", "--db", db, "--id", "bad", "--platform", "wecom", "--receive-id", "ww1",
                    "--token", token)
        assert r.returncode == 2 and "Token" in r.stderr, (token, r.stderr)
    r = hub_cli("accounts", "list", "--db", db, "--json", "--base-url", "https://hub.example.com")
    accounts = json.loads(r.stdout)
    assert len(accounts) == 1
    a = accounts[0]
    assert a["id"] == "brand-oa" and a["platform"] == "oa" and a["receive_id"] == "wxAPPID1"
    assert a["callback_url"] == "https://hub.example.com/callbacks/oa/brand-oa"
    assert len(a["encoding_aes_key"]) == 43 and 3 <= len(a["token"]) <= 32 and a["secret"] == "s3cret"
    assert a["message_mode"] == "safe"


def test_database_url_names_the_database_and_the_hub_picks_its_driver(tmp_path):
    r = hub_cli("accounts", "add", "--db", f"sqlite:///{tmp_path}/plain.db", "--id", "oa1", "--platform", "oa",
                "--receive-id", "wxAPPID2")
    assert r.returncode == 0, r.stderr
    r = hub_cli("accounts", "list", "--db", f"sqlite+aiosqlite:///{tmp_path}/plain.db", "--json")
    assert [a["id"] for a in json.loads(r.stdout)] == ["oa1"]
    for url, why in (("mysql://root@127.0.0.1/test", "unsupported database 'mysql'"),
                     ("postgresql+psycopg2://u@h/db", "not supported: use postgresql+asyncpg://"),
                     ("not a url", "not a database URL")):
        r = hub_cli("accounts", "list", "--db", url)
        assert r.returncode == 1 and why in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_bad_input_is_one_line_not_a_traceback(tmp_path):
    """An unreadable --since, an [[accounts]] table without its Token and EncodingAESKey, and an
    account with a bad EncodingAESKey (serve stopped its start-up with a HubError): each a one-line
    scrm-hub: error and a non-zero exit."""
    db = f"sqlite:///{tmp_path}/bad.db"
    r = hub_cli("archive", "export", "--db", db, "--since", "yesterday")
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("scrm-hub: --since 'yesterday': not a time"), r.stderr
    account = 'id = "a1"\nplatform = "wecom"\nname = "A"\nreceive_id = "ww1"\n'
    missing = tmp_path / "missing.toml"
    missing.write_text("[[accounts]]\n" + account)
    r = hub_cli("accounts", "list", "--db", db, "--config", str(missing))
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip() == "scrm-hub: [[accounts]] entry 1 (a1): token, encoding_aes_key missing", r.stderr
    short_key = tmp_path / "short.toml"
    short_key.write_text("[[accounts]]\n" + account + 'token = "abc123"\nencoding_aes_key = "short"\n')
    r = hub_cli("serve", "--db", db, "--config", str(short_key), "--port", "0")
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("scrm-hub: [[accounts]] a1: ") and "EncodingAESKey" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # what the console's API refuses is refused in the config file too (a name over its column was a
    # PostgreSQL error at start-up, stored as is on SQLite)
    key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    long_name = tmp_path / "long_name.toml"
    long_name.write_text("[[accounts]]\n" + account.replace('name = "A"', 'name = "' + "门店" * 40 + '"')
                         + f'token = "abc123"\nencoding_aes_key = "{key}"\n')
    r = hub_cli("serve", "--db", db, "--config", str(long_name), "--port", "0")
    assert r.returncode != 0 and r.stderr.strip() == "scrm-hub: [[accounts]] a1: name: at most 64 characters", r.stderr


def test_async_url_keeps_everything_but_the_driver():
    from hub.config import async_url
    assert async_url("postgres://u:p@h:5433/db?schema=s1") == "postgresql+asyncpg://u:p@h:5433/db?schema=s1"
    assert async_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
    assert async_url("sqlite+aiosqlite:///rel.db") == "sqlite+aiosqlite:///rel.db"


async def test_archive_export_jsonl_and_csv(aiohttp_client, hub_config, wecom, db_url):
    client = await aiohttp_client(create_app(hub_config))
    for i, text in enumerate(["导出0", "导出1", "=HYPERLINK(\"http://x.example\",\"点我\")"]):
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmExport", text, 11000 + i))
    await client.server.app[HUB].pipeline.drain()
    await client.close()
    r = hub_cli("archive", "export", "--db", db_url)
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    formula = '=HYPERLINK("http://x.example","点我")'
    assert [m["text"] for m in lines] == ["导出0", "导出1", formula]  # JSON Lines: the exact text
    assert all(m["peer_id"] == "wmExport" and m["channel"] == "wecom" and m["direction"] == "in" for m in lines)
    r = hub_cli("archive", "export", "--db", db_url, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    # CSV is opened in a spreadsheet: a customer's formula stays text there
    assert [row["text"] for row in rows] == ["导出0", "导出1", "'" + formula]
    r = hub_cli("archive", "export", "--db", db_url, "--since", "2999-01-01T00:00:00Z")
    assert r.stdout == "" and "exported 0" in r.stderr
