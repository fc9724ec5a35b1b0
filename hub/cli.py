"""The command line: ``python -m hub serve|accounts|archive ...`` (see README.md)."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import sys
from datetime import datetime, timezone
from typing import Any

from .clock import Clock
from .config import HubConfig, load_config


def _port(value: str) -> int:
    """--port: 0-65535 (0: any free port; 99999 listened on 34463 under uvloop)."""
    if not value.strip().isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (0-65535)")
    return int(value)


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help="database URL (default: $HUB_DATABASE_URL or sqlite+aiosqlite:///scrm-hub.db)")
    p.add_argument("--config", metavar="FILE", help="TOML config file (default: $HUB_CONFIG)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hub", description="scrm-hub: WeCom / Official Account customer-service hub")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the hub (HTTP callbacks, API, workers)")
    _add_db(serve)
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="listen port (default 8080)")
    serve.add_argument("--demo", action="store_true", help="seed a demo brand (accounts) and print how to reach it")
    serve.add_argument("--wecom-api-base", help="WeCom API base URL ($HUB_WECOM_API_BASE)")
    serve.add_argument("--oa-api-base", help="Official Account API base URL ($HUB_OA_API_BASE)")
    serve.add_argument("--access-log", action="store_true", help="log every HTTP request")
    serve.add_argument("--loop", choices=["auto", "uvloop", "asyncio"],
                       help="event loop: auto (default: uvloop if installed), uvloop, asyncio ($HUB_EVENT_LOOP)")
    serve.add_argument("--workers", type=int, help="run N hub processes on one port (SO_REUSEPORT); N > 1 needs "
                       "PostgreSQL and Redis (docs/deploy.md)")
    serve.add_argument("--redis", metavar="URL", help="Redis URL shared by the hub processes ($HUB_REDIS_URL)")

    accounts = sub.add_parser("accounts", help="the brand's WeCom corps and Official Accounts")
    acc_sub = accounts.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = acc_sub.add_parser("add", help="add or replace an account (Token/EncodingAESKey generated if omitted)")
    _add_db(add)
    add.add_argument("--id", required=True, help="account id, used in the callback path")
    add.add_argument("--platform", required=True, choices=["wecom", "oa"])
    add.add_argument("--name", default="")
    add.add_argument("--receive-id", required=True, help="CorpID (wecom) or AppID (oa)")
    add.add_argument("--token", help="callback Token (3-32 English letters or digits)")
    add.add_argument("--aes-key", help="43-character EncodingAESKey")
    add.add_argument("--secret", default="", help="API secret (corpsecret / AppSecret)")
    add.add_argument("--mode", choices=("plain", "compat", "safe"), default="compat",
                     help="an Official Account's message mode (消息加解密方式) as set in its console: safe refuses "
                          "unencrypted posts (default: compat, both)")
    add.add_argument("--base-url", default="", help="public base URL, to print full callback URLs")
    add.add_argument("--json", action="store_true")
    lst = acc_sub.add_parser("list", help="list accounts with what to paste into the platform's console")
    _add_db(lst)
    lst.add_argument("--base-url", default="", help="public base URL, to print full callback URLs")
    lst.add_argument("--json", action="store_true")

    users = sub.add_parser("users", help="agents, supervisors and admins")
    usr_sub = users.add_subparsers(dest="action", metavar="ACTION", required=True)
    uadd = usr_sub.add_parser("add", help="add a user")
    _add_db(uadd)
    uadd.add_argument("--username", required=True)
    uadd.add_argument("--password", required=True, help="at least 8 characters")
    uadd.add_argument("--role", choices=["agent", "supervisor", "admin"], default="agent")
    uadd.add_argument("--name", default="", help="display name shown to colleagues")
    uadd.add_argument("--groups", default="", help="skill groups, comma-separated (e.g. presales,aftersales)")
    uadd.add_argument("--cap", type=int, default=5, help="concurrent sessions (default 5)")
    ulist = usr_sub.add_parser("list", help="list users")
    _add_db(ulist)
    ulist.add_argument("--json", action="store_true")

    faq = sub.add_parser("faq", help="the FAQ knowledge base")
    faq_sub = faq.add_subparsers(dest="action", metavar="ACTION", required=True)
    fimp = faq_sub.add_parser("import", help="import FAQs from FILE (.csv or .json); bad lines are reported")
    _add_db(fimp)
    fimp.add_argument("file")
    fexp = faq_sub.add_parser("export", help="export every FAQ to FILE (.csv or .json)")
    _add_db(fexp)
    fexp.add_argument("file")
    fmatch = faq_sub.add_parser("match", help="match TEXT (or '-' for one query per line on stdin)")
    _add_db(fmatch)
    fmatch.add_argument("text")
    fmatch.add_argument("--top", type=int, default=3)
    fmatch.add_argument("--json", action="store_true", help="one JSON object per query")

    archive = sub.add_parser("archive", help="the conversation archive")
    arc_sub = archive.add_subparsers(dest="action", metavar="ACTION", required=True)
    exp = arc_sub.add_parser("export", help="archived messages, one per line, to standard output")
    _add_db(exp)
    exp.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    exp.add_argument("--since", help="only messages archived at or after T (ISO 8601 or epoch seconds)")
    from .archive.search.cli import add_search_parser
    _add_db(add_search_parser(arc_sub))
    _add_db_command(sub)
    from .privacy.cli import add_parsers as add_privacy_parsers
    add_privacy_parsers(sub, _add_db)  # customers erase, secrets rotate|status, privacy purge
    return parser


def _add_db_command(sub: Any) -> None:
    db = sub.add_parser("db", help="the database schema (Alembic migrations in hub/migrations)")
    db_sub = db.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = db_sub.add_parser("upgrade", help="migrate to the newest revision (or --to REV)")
    _add_db(up)
    up.add_argument("--to", default="heads", metavar="REV")
    down = db_sub.add_parser("downgrade", help="migrate back to REV ('base': drop every table)")
    _add_db(down)
    down.add_argument("--to", required=True, metavar="REV")
    _add_db(db_sub.add_parser("current", help="the revision the database is at"))
    _add_db(db_sub.add_parser("check", help="exit 1 when the models and the migrated database differ"))
    db_sub.add_parser("history", help="the revisions, newest first")
    rev = db_sub.add_parser("revision", help="write the next revision, autogenerated from the models")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--empty", action="store_true", help="an empty revision to fill in by hand")
    rev.add_argument("--db", metavar="URL", help="replay head on this database (default: a scratch SQLite file)")


def parse_since(value: str | None) -> float | None:
    """Epoch seconds or an ISO 8601 time (UTC unless it says); ValueError otherwise (an empty value
    too: `--since "$T"` with T unset is not "since the beginning")."""
    if value is None:
        return None
    try:
        since = float(value)
    except ValueError:
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"--since {value!r}: not a time (ISO 8601 such as 2025-06-01T08:00:00+08:00, "
                             "or epoch seconds)") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    if not math.isfinite(since):
        raise ValueError(f"--since {value!r}: not a time")
    return since


def _config(args: argparse.Namespace, **extra) -> HubConfig:  # noqa: ANN003
    try:
        return load_config(getattr(args, "config", None), database_url=getattr(args, "db", None), **extra)
    except ValueError as exc:  # an unusable setting (a database URL, a number, an account): one line, no traceback
        raise SystemExit(f"scrm-hub: {exc}") from None
    except OSError as exc:  # the config file cannot be read
        raise SystemExit(f"scrm-hub: config file: {exc}") from None


def _check_accounts(config: HubConfig) -> None:
    """The config file's accounts, checked as the hub will check them at start (a bad EncodingAESKey
    stopped the start-up with a traceback)."""
    from .accounts import validate
    from .errors import HubError
    for a in config.accounts:
        try:
            validate(a.platform, a.id, a.token, a.encoding_aes_key, a.receive_id, a.name or a.id, a.secret,
                     a.message_mode)
        except HubError as exc:
            raise SystemExit(f"scrm-hub: [[accounts]] {a.id}: {exc.message}") from None


def _failures() -> tuple[type[BaseException], ...]:
    """What a command reports in one line, not a traceback: a database unusable, a key missing, a file..."""
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    from .privacy.secrets import SecretKeyError
    from .schema import SchemaError
    return OSError, DBAPIError, SchemaError, SecretKeyError, ValueError, CommandError


def _one_line(exc: BaseException, prefix: str = "") -> SystemExit:
    why = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__]
    return SystemExit(f"scrm-hub: {prefix}{why[0]}")


async def _with_db(config: HubConfig, fn):  # noqa: ANN001, ANN202
    from .db import Database
    db = None
    try:
        try:
            db = Database(config.database_url)  # (a :memory: SQLite database is a ValueError)
            await db.create_schema(config.auto_migrate)
        except _failures()[:2] as exc:  # a server down, a file that cannot be opened: one line
            raise _one_line(exc, "cannot open the database: ") from None
        return await fn(db)
    except _failures() as exc:  # a schema this hub cannot use, a key missing, a file not found: one line
        raise _one_line(exc) from None
    finally:
        if db is not None:
            await db.dispose()


GIL_SWITCH_S = 0.0005


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from .app import create_app
    config = _config(args, host=args.host, port=args.port, wecom_api_base=args.wecom_api_base,
                     oa_api_base=args.oa_api_base, demo=args.demo or None, redis_url=args.redis,
                     event_loop=args.loop)
    _check_accounts(config)
    if args.workers is not None:
        from .workers import WorkersConfigError, check_workers, supervise
        try:
            check_workers(args.workers, config.database_url, config.redis_url)
        except WorkersConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return supervise(args.argv, args.workers, config.database_url)
    from .event_loop import EventLoopError, new_event_loop
    try:
        loop, loop_name = new_event_loop(config.event_loop)
    except EventLoopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the archive's group commit finishes in a helper thread (the fsync), which then needs the GIL to
    # hand the batch back; while callbacks keep the loop busy it would wait out Python's default
    # 5 ms switch interval, and every callback in that batch waits with it
    sys.setswitchinterval(GIL_SWITCH_S)

    async def usable(db) -> None:  # noqa: ANN001 - checked before start-up: one line, not a traceback
        from .privacy.secrets import ring_for
        ring_for(db)
    asyncio.run(_with_db(config, usable))  # the schema (auto-migrated or refused) and the secret key
    try:  # bound before start-up: "ready" is logged once the port is ours
        socks = _listen(config.host, config.port, os.environ.get("HUB_REUSE_PORT") == "1")
    except OSError as exc:  # in use, not an address of this machine, a host that does not resolve
        raise SystemExit(f"scrm-hub: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
    app = create_app(config)

    async def log_loop(app: web.Application) -> None:
        running = type(asyncio.get_running_loop())
        logging.getLogger("hub").info("event loop: %s (%s.%s)", loop_name, running.__module__, running.__qualname__)
    app.on_startup.append(log_loop)
    if config.demo:
        async def announce(app: web.Application) -> None:
            from .app import HUB
            hub = app[HUB]
            base = f"http://{config.host}:{config.port}"
            print(f"scrm-hub demo on {base}", flush=True)
            for a in await __import__("hub.accounts", fromlist=["list_accounts"]).list_accounts(hub.db):
                print(f"  {a.platform:5} {a.id:12} callback {base}{a.callback_path}", flush=True)
            print(f"  API token (Authorization: Bearer ...): {hub.api_token}", flush=True)
            print(f"  agent console {base}/console  (demo users and passwords: README.md)", flush=True)
        app.on_startup.append(announce)
    async def one_stop_signal(app: web.Application) -> None:
        """Stopping has begun: a second SIGTERM or SIGINT (systemd signalling the whole group and the
        supervisor forwarding its own, or Ctrl-C reaching every worker) must not cut the graceful
        stop short (claims unreleased, sends cut off mid-request)."""
        import signal
        running = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                running.add_signal_handler(signum, lambda: None)
            except (NotImplementedError, RuntimeError):  # no signal handlers here (Windows, a thread)
                pass
    app.on_shutdown.insert(0, one_stop_signal)
    try:
        web.run_app(app, sock=socks, access_log=logging.getLogger("aiohttp.access") if args.access_log else None,
                    print=lambda *_: None, loop=loop)
    except _failures() as exc:  # what start-up met after the check (another process migrated, say)
        raise _one_line(exc) from None
    return 0


def _listen(host: str, port: int, reuse_port: bool) -> list:
    """Sockets bound on every address ``host`` resolves to, as aiohttp's TCPSite binds them."""
    import socket
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []  # (on an error the caller exits: nothing to close)
    for family, kind, proto, _, addr in dict.fromkeys(infos):
        socks.append(sock := socket.socket(family, kind, proto))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
    return socks


def cmd_accounts(args: argparse.Namespace) -> int:
    from .accounts import list_accounts, upsert_account
    from .errors import HubError
    config = _config(args)

    async def run(db):  # noqa: ANN001, ANN202
        if args.action == "add":
            try:  # upsert_account checks what the console's API checks (hub/accounts.py validate)
                acc = await upsert_account(db, Clock(), id=args.id, platform=args.platform, name=args.name.strip(),
                                           token=args.token, encoding_aes_key=args.aes_key,
                                           receive_id=args.receive_id.strip(), secret=args.secret.strip(),
                                           message_mode=args.mode)
            except HubError as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                return 2
            rows = [acc]
        else:
            rows = await list_accounts(db)
        if args.json:
            print(json.dumps([a.public(args.base_url) for a in rows], ensure_ascii=False, indent=2))
        else:
            for a in rows:
                # the URL as public() builds it for --json: a base URL's trailing slash made "//callbacks"
                print(f"{a.id}\t{a.platform}\t{a.name}\treceive_id={a.receive_id}\tcallback={a.public(args.base_url)['callback_url']}"
                      f"\ttoken={a.token}\tencoding_aes_key={a.encoding_aes_key}"
                      + (f"\tmessage_mode={a.message_mode}" if a.platform == "oa" else ""))
        return 0

    return asyncio.run(_with_db(config, run))


def cmd_users(args: argparse.Namespace) -> int:
    from .errors import HubError
    from .users import add_user, list_users
    config = _config(args)

    async def run(db):  # noqa: ANN001, ANN202
        if args.action == "add":
            groups = [g.strip() for g in args.groups.split(",") if g.strip()]
            try:
                user = await add_user(db, Clock(), username=args.username, password=args.password, role=args.role,
                                      display_name=args.name, groups=groups, cap=args.cap)
            except HubError as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                return 2
            print(f"added {user.role} {user.username} (id {user.id})")
            return 0
        rows = await list_users(db)
        if args.json:
            print(json.dumps([u.public() for u in rows], ensure_ascii=False, indent=2))
        else:
            for u in rows:
                flags = "\tdisabled" if u.disabled else ""
                print(f"{u.id}\t{u.username}\t{u.role}\t{','.join(u.groups)}\tcap={u.cap}{flags}")
        return 0

    return asyncio.run(_with_db(config, run))


def cmd_faq(args: argparse.Namespace) -> int:
    from .knowledge import io as faq_io
    from .knowledge.store import KnowledgeBase
    config = _config(args)

    async def run(db):  # noqa: ANN001, ANN202
        kb = KnowledgeBase(db, Clock())
        await kb.load()
        if args.action == "import":
            with open(args.file, "rb") as fh:  # UTF-8, or GBK as Excel/WPS save a CSV on a Chinese Windows
                parsed = faq_io.parse_bytes(args.file.lower().endswith(".json"), fh.read())
            created, updated = await kb.import_many(parsed.items) if parsed.items else ([], [])
            print(f"imported {len(created)} FAQ entries" + (f", updated {len(updated)}" if updated else ""))
            for err in parsed.errors:
                where = f" ({err['field']})" if err.get("field") else ""
                print(f"rejected line {err['line']}{where}: {err['message']}")
            return 0 if created or updated or not parsed.errors else 1
        if args.action == "export":
            entries = await kb.list()
            text = faq_io.to_json(entries) if args.file.lower().endswith(".json") else faq_io.to_csv(entries)
            with open(args.file, "w", encoding="utf-8") as fh:
                fh.write(text)
            print(f"exported {len(entries)} FAQ entries to {args.file}")
            return 0
        queries = [q.rstrip("\n") for q in sys.stdin] if args.text == "-" else [args.text]
        for q in queries:
            if not q.strip():
                continue
            matches = kb.match(q, args.top)
            confident = kb.is_confident(matches)
            if args.json:
                print(json.dumps({"query": q, "confident": confident, "matches": [
                    {"id": m.id, "question": m.question, "answer": m.answer, "score": round(m.score, 1)}
                    for m in matches]}, ensure_ascii=False), flush=True)
            else:
                print(f"{q}\t{'confident' if confident else 'not confident'}")
                for m in matches:
                    print(f"  {m.score:5.1f}  #{m.id} {m.question} -> {m.answer[:60]}")
        return 0

    return asyncio.run(_with_db(config, run))


def cmd_archive(args: argparse.Namespace) -> int:
    from .archive.export import ExportCut, export
    config = _config(args)
    if args.action == "search":
        from .archive.search.cli import search_command
        return asyncio.run(_with_db(config, lambda db: search_command(db, args)))
    try:
        since = parse_since(args.since)
    except ValueError as exc:
        raise SystemExit(f"scrm-hub: {exc}") from None

    async def run(db):  # noqa: ANN001, ANN202
        try:
            count, cut, error = await export(db, sys.stdout, args.format, since), False, None
        except ExportCut as exc:  # the reader stopped (`| head`), a full disk: no traceback, and still audited
            count, cut, error = exc.count, True, exc.error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush finds no pipe
        from .privacy.views import audit_cli_export  # every export is in the access audit
        await audit_cli_export(db, "export.archive", {"format": args.format, "since": since, "messages": count})
        print(f"exported {count} messages{' (output closed early)' if cut else ''}" if error is None else
              f"scrm-hub: writing the export failed after {count} messages: {error.strerror or error}", file=sys.stderr)
        return 1 if cut else 0

    return asyncio.run(_with_db(config, run))


def cmd_db(args: argparse.Namespace) -> int:
    from . import schema
    from .db import Database
    if args.action == "history":
        try:
            print("\n".join(schema.history()), flush=True)
        except BrokenPipeError:  # `db history | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        return 0
    if args.action == "revision":
        try:
            path = asyncio.run(schema.autogenerate(args.message, url=args.db, empty=args.empty))
        except _failures() as exc:
            raise _one_line(exc) from None
        print(f"wrote {path}" if path else "the models match head: no revision written")
        return 0
    config = _config(args)

    async def run() -> int:
        db = None
        try:
            db = Database(config.database_url)  # (a :memory: SQLite database is a ValueError)
            if args.action == "upgrade":
                await schema.upgrade(db, args.to)
            elif args.action == "downgrade":
                await schema.downgrade(db, args.to)
            elif args.action == "check":
                changes = await schema.diff(db)
                for change in changes:
                    print(change)
                if changes:
                    print(f"{len(changes)} difference(s) between the models and the database: "
                          "write a revision (python -m hub db revision -m MSG)", file=sys.stderr)
                    return 1
            heads = schema.DEFAULT.heads()
            revs = await schema.current(db)
            state = "head" if set(revs) == heads else f"behind head {', '.join(sorted(heads))}"
            if any(not schema.DEFAULT.knows(rev) for rev in revs):
                state = "unknown to this hub: a newer hub migrated it?"
            print(f"{', '.join(revs) or '(not under migrations)'} ({state})")
            return 0
        except _failures()[:2] as exc:  # a server down, a file that cannot be opened
            raise _one_line(exc, "cannot open the database: ") from None
        except _failures() as exc:  # an unknown --to revision, a downgrade "to" a later one, a key missing
            raise _one_line(exc) from None
        finally:
            if db is not None:
                await db.dispose()

    return asyncio.run(run())


def cmd_privacy(args: argparse.Namespace) -> int:
    from .privacy.cli import run
    config = _config(args)
    return run(args, lambda fn: asyncio.run(_with_db(config, fn)))


COMMANDS = {"serve": cmd_serve, "accounts": cmd_accounts, "users": cmd_users, "faq": cmd_faq,
            "archive": cmd_archive, "db": cmd_db, "customers": cmd_privacy, "secrets": cmd_privacy,
            "privacy": cmd_privacy}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["serve", *argv]  # `python -m hub [--demo ...]` means serve
    args = parser.parse_args(argv)
    args.argv = argv  # `serve --workers N` starts its workers with the same command line
    return COMMANDS[args.command](args)
