"""Schema migrations with Alembic, configured in code (scripts in hub/migrations/, no alembic.ini needed).

On start (``Database.create_schema``):

* a fresh database: ``create_all`` + stamp head (one transaction; ~10x faster than replaying every
  revision, and the migrations test proves both give the same schema);
* a database with ``alembic_version`` behind head: ``upgrade head`` (``HUB_AUTO_MIGRATE``, default on;
  off: start refuses with a clear message, run ``python -m hub db upgrade``);
* a database created before Alembic (hub tables, no ``alembic_version``): the baseline's missing
  tables are created, it is stamped at the baseline, then upgraded.

All of it runs in one transaction under a lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL an advisory
lock per schema) so processes starting together migrate once. On PostgreSQL ``?schema=NAME`` is the
search_path and also holds ``alembic_version``. SQLite migrations run with foreign keys off (batch
mode recreates tables) and ``PRAGMA foreign_key_check`` before commit.

Tables the hub creates outside the models (an FTS5 virtual table and its shadow tables, say) are
left out of autogenerate comparisons: SQLite virtual tables are found by themselves, anything else is
named with ``register_external``.
"""
from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, inspect, text

if TYPE_CHECKING:
    from .db import Database

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # the first revision: the schema as it was when the hub adopted Alembic
VERSION_TABLE = "alembic_version"

_external: set[str] = set()


class SchemaError(RuntimeError):
    """The database's schema cannot be used as it is (behind head with auto-migrate off, unknown revision)."""


def register_external(name: str) -> None:
    """A table or index the hub creates itself, outside the models (``name`` and, for tables,
    ``name_*`` shadow tables): migrations' comparisons leave it alone."""
    _external.add(name)


def is_external(name: str, extra: Iterable[str] = ()) -> bool:
    names = _external | set(extra)
    return name in names or any(name.startswith(n + "_") for n in names)


def load_models() -> MetaData:
    """Every table of the hub: imports each module of hub.models (some, like orders and channels,
    are otherwise imported only by their wiring)."""
    from . import models
    for info in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"{models.__name__}.{info.name}")
    return models.Base.metadata


def _virtual_tables(conn: Connection) -> set[str]:
    if conn.dialect.name != "sqlite":
        return set()
    rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")
    return {r[0] for r in rows}


def include_object_for(conn: Connection | None) -> Callable[..., bool]:
    """Alembic's ``include_object`` hook: skips reflected tables/indexes the models do not own when
    they are external (registered, or SQLite virtual tables and their shadow tables)."""
    virtual = _virtual_tables(conn) if conn is not None else set()

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if not reflected or compare_to is not None:
            return True
        if type_ == "table" and name == VERSION_TABLE:
            return False  # Alembic's own (in ?schema=, which reflection reports as the default schema)
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        if type_ in ("table", "index") and (is_external(name or "", virtual) or is_external(table or "", virtual)):
            return False
        return True

    return include_object


def context_options(conn: Connection | None, schema: str | None) -> dict[str, Any]:
    """What every MigrationContext of the hub is configured with."""
    return {
        "target_metadata": load_models(),
        "render_as_batch": True,  # SQLite cannot ALTER most things: batch mode recreates the table
        "compare_type": True,
        "include_object": include_object_for(conn),
        "version_table": VERSION_TABLE,
        "version_table_schema": schema,
    }


def _next_rev_id(script: ScriptDirectory) -> str:
    numbers = [int(m.group(1)) for r in script.walk_revisions() if (m := re.match(r"(\d+)", r.revision))]
    return f"{max(numbers, default=0) + 1:04d}"


@dataclass
class Migrations:
    """The Alembic scripts (``version_locations``: extra directories of revisions, for tests)."""

    version_locations: tuple[str, ...] = ()
    _script: ScriptDirectory | None = field(default=None, repr=False)

    def config(self, url: str = "", connection: Connection | None = None, schema: str | None = None) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
        locations = [str(MIGRATIONS_DIR / "versions"), *self.version_locations]
        cfg.set_main_option("version_locations", os.pathsep.join(locations))
        cfg.set_main_option("path_separator", "os")
        if url:
            cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        cfg.attributes["connection"] = connection
        cfg.attributes["schema"] = schema
        return cfg

    @property
    def script(self) -> ScriptDirectory:
        if self._script is None:
            self._script = ScriptDirectory.from_config(self.config())
        return self._script

    def heads(self) -> set[str]:
        return set(self.script.get_heads())

    def knows(self, revision: str) -> bool:
        try:
            return self.script.get_revision(revision) is not None
        except (ResolutionError, CommandError):
            return False

    def next_rev_id(self) -> str:
        return _next_rev_id(self.script)


DEFAULT = Migrations()


# -- running things against a Database, in one locked transaction ------------------------------------

async def run_locked(db: "Database", fn: Callable[[Connection], Any]) -> Any:
    """``fn(sync_connection)`` in one transaction that no other process's migration runs beside."""
    if db.sync_engine is not None:
        await db.gate.acquire()
        try:
            with db.sync_engine.connect() as conn:
                raw = conn.connection.driver_connection
                raw.execute("PRAGMA foreign_keys=OFF")  # only outside a transaction; batch mode recreates tables
                try:
                    conn = conn.execution_options(hub_write=True)  # BEGIN IMMEDIATE: the other processes wait
                    with conn.begin():
                        result = fn(conn)
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                        if broken:
                            raise SchemaError(f"foreign keys broken by the migration: {broken[:5]}")
                    return result
                finally:
                    raw.execute("PRAGMA foreign_keys=ON")
        finally:
            db.gate.release()
    async with db.engine.connect() as conn:
        async with conn.begin():
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                               {"key": f"scrm-hub-migrate:{db.schema or ''}"})
            if db.schema:
                quoted = conn.dialect.identifier_preparer.quote_schema(db.schema)
                await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
            return await conn.run_sync(fn)


def _context(conn: Connection, schema: str | None) -> MigrationContext:
    return MigrationContext.configure(conn, opts=context_options(conn, schema))


def _hub_tables_present(conn: Connection, metadata: MetaData) -> set[str]:
    return set(inspect(conn).get_table_names()) & set(metadata.tables)


def _baseline_tables(migrations: Migrations) -> list[str]:
    module = migrations.script.get_revision(BASELINE).module
    return list(module.TABLES)


def _upgrade(conn: Connection, schema: str | None, migrations: Migrations, target: str) -> None:
    command.upgrade(migrations.config(connection=conn, schema=schema), target)


def _stamp_legacy(conn: Connection, ctx: MigrationContext, migrations: Migrations, metadata: MetaData) -> None:
    """A database from before Alembic: complete the baseline's tables, then stamp it at the baseline."""
    wanted = [metadata.tables[name] for name in _baseline_tables(migrations) if name in metadata.tables]
    metadata.create_all(conn, tables=wanted, checkfirst=True)
    ctx.stamp(migrations.script, BASELINE)


def prepare_sync(conn: Connection, schema: str | None, auto_migrate: bool, migrations: Migrations) -> str:
    """Bring the database to head; returns what was done: created, current, upgraded, adopted."""
    metadata = load_models()
    ctx = _context(conn, schema)
    current = set(ctx.get_current_heads())
    heads = migrations.heads()
    if current == heads:
        return "current"
    unknown = {rev for rev in current if not migrations.knows(rev)}
    if unknown:
        raise SchemaError(f"the database is at revision {sorted(unknown)}, which this version of the hub does not "
                          "know (a newer hub migrated it?)")
    if not current:
        if not _hub_tables_present(conn, metadata):
            metadata.create_all(conn)
            ctx.stamp(migrations.script, "heads")
            return "created"
        _stamp_legacy(conn, ctx, migrations, metadata)
        if migrations.heads() == {BASELINE}:
            return "adopted"
        current = {BASELINE}
    if not auto_migrate:
        raise SchemaError(f"the database schema is at {sorted(current)}, the hub needs {sorted(heads)}: run "
                          "`python -m hub db upgrade` (or set HUB_AUTO_MIGRATE=1)")
    _upgrade(conn, schema, migrations, "heads")
    log.info("database schema upgraded from %s to %s", sorted(current), sorted(heads))
    return "upgraded"


async def prepare(db: "Database", auto_migrate: bool = True, migrations: Migrations = DEFAULT) -> str:
    return await run_locked(db, lambda conn: prepare_sync(conn, db.schema, auto_migrate, migrations))


# -- the `python -m hub db ...` commands ---------------------------------------------------------------

async def upgrade(db: "Database", target: str = "heads", migrations: Migrations = DEFAULT) -> None:
    """Replay the migrations up to ``target`` (a database from before Alembic is adopted first)."""
    def run(conn: Connection) -> None:
        ctx = _context(conn, db.schema)
        if not ctx.get_current_heads() and _hub_tables_present(conn, load_models()):
            _stamp_legacy(conn, ctx, migrations, load_models())
        _upgrade(conn, db.schema, migrations, target)
    await run_locked(db, run)


async def downgrade(db: "Database", target: str, migrations: Migrations = DEFAULT) -> None:
    await run_locked(db, lambda conn: command.downgrade(migrations.config(connection=conn, schema=db.schema), target))


async def current(db: "Database") -> list[str]:
    """The revisions the database is at (empty: not under Alembic yet)."""
    return await run_locked(db, lambda conn: sorted(_context(conn, db.schema).get_current_heads()))


async def diff(db: "Database") -> list[Any]:
    """What differs between the models and the database (empty when the migrations match the models)."""
    return await run_locked(db, lambda conn: compare_metadata(_context(conn, db.schema), load_models()))


def history(migrations: Migrations = DEFAULT) -> list[str]:
    """One line per revision, newest first."""
    return [f"{r.revision}{' (head)' if r.is_head else ''}  <- {r.down_revision or 'base'}  {r.doc}"
            for r in migrations.script.walk_revisions()]


async def autogenerate(message: str, url: str | None = None, empty: bool = False,
                       migrations: Migrations = DEFAULT, version_path: str | None = None) -> str | None:
    """Write the next revision: the difference between the models and head (replayed on ``url``,
    default a scratch SQLite file) into ``version_path`` (default hub/migrations/versions).
    ``empty``: an empty revision to fill in by hand (data migrations). Returns the new file's path,
    or None when the models match head."""
    from .db import Database
    with tempfile.TemporaryDirectory(prefix="hub-revision-") as tmp:
        db = Database(url or f"sqlite+aiosqlite:///{tmp}/scratch.db")
        try:
            await upgrade(db, "heads", migrations)
            rev_id = migrations.next_rev_id()
            written: list[str] = []

            def skip_empty(context: Any, revision: Any, directives: list) -> None:
                script = directives[0]
                if not empty and script.upgrade_ops.is_empty():
                    directives[:] = []

            def run(conn: Connection) -> None:
                cfg = migrations.config(connection=conn, schema=db.schema)
                scripts = command.revision(cfg, message=message, autogenerate=not empty, rev_id=rev_id,
                                           version_path=version_path or str(MIGRATIONS_DIR / "versions"),
                                           process_revision_directives=None if empty else skip_empty)
                for s in scripts if isinstance(scripts, list) else [scripts]:
                    if s is not None:
                        written.append(s.path)
            await run_locked(db, run)
        finally:
            await db.dispose()
    migrations._script = None  # it has a new revision
    return written[0] if written else None
