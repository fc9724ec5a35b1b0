"""Alembic migrations (hub/schema.py, hub/migrations): the migrations build exactly the models' schema,
on SQLite and on PostgreSQL (HUB_TEST_DATABASE=postgres: a schema per test), and the hub brings any
database to head on start: fresh, behind head, or created before the hub used Alembic.

`test_models_match_migrations` fails whenever a model changes without a revision: write one with
`python -m hub db revision -m "what changed"` (docs/migrations.md)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import Column, Integer, String, Table, inspect, text

from hub import schema
from hub.db import Database
from hub.models import Base
from tests.conftest import ON_POSTGRES, ROOT


@pytest.fixture
async def db(db_url):
    database = Database(db_url)
    yield database
    await database.dispose()


async def tables(db: Database) -> set[str]:
    async with db.read_heavy() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


def describe(diffs: list) -> str:
    return "\n".join(repr(d)[:200] for d in diffs)


async def test_models_match_migrations(db):
    """`upgrade head` from an empty database builds exactly what the models declare."""
    await schema.upgrade(db)
    assert set(await schema.current(db)) == schema.DEFAULT.heads()
    diffs = await schema.diff(db)
    assert diffs == [], ("the models and hub/migrations differ; write a revision with "
                         "`python -m hub db revision -m MSG`:\n" + describe(diffs))


async def test_fresh_database_is_created_and_stamped_then_left_alone(db):
    assert await db.create_schema() == "created"
    assert set(await schema.current(db)) == schema.DEFAULT.heads()
    assert set(schema.load_models().tables) <= await tables(db)
    assert await schema.diff(db) == []  # create_all + stamp head == what the migrations build
    assert await db.create_schema() == "current"


async def test_downgrade_to_base_and_back(db):
    await schema.upgrade(db)
    await schema.downgrade(db, "base")
    assert await tables(db) - {"alembic_version"} == set()
    assert await schema.current(db) == []
    await schema.upgrade(db)
    assert set(await schema.current(db)) == schema.DEFAULT.heads()


async def test_database_from_before_alembic_is_adopted(db):
    """Tables made by create_all (the hub before migrations), one of them missing, no alembic_version."""
    metadata = schema.load_models()
    baseline = [metadata.tables[name] for name in schema._baseline_tables(schema.DEFAULT)]
    referenced = {fk.column.table.name for t in baseline for fk in t.foreign_keys}
    missing = next(t.name for t in baseline if t.name not in referenced and t.name != "settings")
    baseline = [t for t in baseline if t.name != missing]
    await schema.run_locked(db, lambda conn: metadata.create_all(conn, tables=baseline))
    async with db.write() as conn:
        await conn.execute(text("INSERT INTO settings (scope, key, value, updated_at) VALUES ('', 'kept', '\"yes\"', 1.0)"))
    assert "alembic_version" not in await tables(db)
    assert await db.create_schema() in ("adopted", "upgraded")
    assert set(await schema.current(db)) == schema.DEFAULT.heads()
    assert missing in await tables(db)
    async with db.read() as conn:
        assert (await conn.execute(text("SELECT value FROM settings WHERE key = 'kept'"))).scalar() == '"yes"'


@pytest.fixture
def probe_migrations(tmp_path) -> schema.Migrations:
    """The hub's revisions plus one more (a table ``probe_things``), as the next release would ship."""
    head = ", ".join(repr(h) for h in sorted(schema.DEFAULT.heads()))
    (tmp_path / "9001_probe.py").write_text(textwrap.dedent(f'''
        """probe: a revision after head"""
        import sqlalchemy as sa
        from alembic import op

        revision = "9001"
        down_revision = {head}
        branch_labels = None
        depends_on = None


        def upgrade():
            op.create_table("probe_things", sa.Column("id", sa.Integer(), primary_key=True),
                            sa.Column("name", sa.String(32), nullable=False))
            with op.batch_alter_table("settings") as batch:
                batch.add_column(sa.Column("probe_note", sa.String(16), nullable=False, server_default="n"))


        def downgrade():
            with op.batch_alter_table("settings") as batch:
                batch.drop_column("probe_note")
            op.drop_table("probe_things")
    '''))
    return schema.Migrations(version_locations=(str(tmp_path),))


async def test_database_behind_head_is_upgraded_on_start(db, probe_migrations):
    assert await db.create_schema() == "created"
    async with db.write() as conn:
        await conn.execute(text("INSERT INTO settings (scope, key, value, updated_at) VALUES ('', 'kept', '1', 1.0)"))
    with pytest.raises(schema.SchemaError, match="python -m hub db upgrade"):
        await schema.prepare(db, auto_migrate=False, migrations=probe_migrations)
    assert await schema.prepare(db, auto_migrate=True, migrations=probe_migrations) == "upgraded"
    assert await schema.current(db) == ["9001"]
    assert "probe_things" in await tables(db)
    async with db.read() as conn:  # batch mode kept the rows of the table it rebuilt (SQLite)
        row = (await conn.execute(text("SELECT value, probe_note FROM settings WHERE key = 'kept'"))).one()
    assert tuple(row) == ("1", "n")
    assert await schema.prepare(db, migrations=probe_migrations) == "current"
    await schema.downgrade(db, sorted(schema.DEFAULT.heads())[0], probe_migrations)
    assert "probe_things" not in await tables(db)


async def test_unknown_revision_is_refused(db):
    await db.create_schema()
    async with db.write() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'ffffffff'"))
    with pytest.raises(schema.SchemaError, match="does not know"):
        await db.create_schema()


async def test_tables_made_outside_the_models_are_not_differences(db):
    await db.create_schema()
    schema.register_external("probe_outside")
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE probe_outside (id INTEGER PRIMARY KEY, body TEXT)"))
        await conn.execute(text("CREATE INDEX probe_outside_body ON probe_outside (body)"))
        if not ON_POSTGRES:  # an FTS5 virtual table and its shadow tables, found without registering
            await conn.execute(text("CREATE VIRTUAL TABLE probe_fts USING fts5(body)"))
    try:
        assert await schema.diff(db) == []
    finally:
        schema._external.discard("probe_outside")
    assert any(d[0] == "remove_table" and d[1].name == "probe_outside" for d in await schema.diff(db))


async def test_revision_command_writes_the_difference(tmp_path):
    """What `python -m hub db revision -m MSG` does: replay head on a scratch database, compare."""
    versions = tmp_path / "versions"
    versions.mkdir()
    migrations = schema.Migrations(version_locations=(str(versions),))
    probe = Table("probe_autogen", Base.metadata, Column("id", Integer, primary_key=True),
                  Column("label", String(40), nullable=False))
    try:
        path = await schema.autogenerate("add probe", migrations=migrations, version_path=str(versions))
    finally:
        Base.metadata.remove(probe)
    assert path is not None and path.startswith(str(versions))
    body = open(path).read()
    assert "op.create_table('probe_autogen'" in body and "op.drop_table('probe_autogen')" in body
    assert f"down_revision: Union[str, Sequence[str], None] = '{sorted(schema.DEFAULT.heads())[0]}'" in body
    assert path.rsplit("/", 1)[1].startswith(schema.DEFAULT.next_rev_id())


def test_db_commands(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"

    def hub_db(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hub", "db", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)

    head = sorted(schema.DEFAULT.heads())[0]
    assert "(not under migrations)" in hub_db("current", "--db", url).stdout
    r = hub_db("upgrade", "--db", url)
    assert r.returncode == 0 and f"{head} (head)" in r.stdout, r.stderr
    assert f"{head} (head)" in hub_db("history").stdout
    r = hub_db("downgrade", "--db", url, "--to", "base")
    assert r.returncode == 0 and "(not under migrations)" in r.stdout, r.stderr
