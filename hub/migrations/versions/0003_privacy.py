"""privacy: retention policies, legal holds, purge runs, erasure records, sealed account secrets

Revision ID: 0003_privacy
Revises: 0002_timer_claims
Create Date: 2026-11-23 01:00:00
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import context, op


revision: str = '0003_privacy'
down_revision: Union[str, Sequence[str], None] = '0002_timer_claims'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('retention_policies',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('messages_days', sa.Integer(), nullable=True),
    sa.Column('media_days', sa.Integer(), nullable=True),
    sa.Column('orders_days', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_table('legal_holds',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('target_kind', sa.String(length=16), nullable=False),
    sa.Column('target_id', BigId, nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('placed_by', sa.String(length=64), nullable=False),
    sa.Column('placed_at', sa.Float(), nullable=False),
    sa.Column('lifted_by', sa.String(length=64), nullable=True),
    sa.Column('lifted_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.create_index('ix_legal_holds_target', ['target_kind', 'target_id'], unique=False)
    op.create_table('purge_runs',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('finished_at', sa.Float(), nullable=True),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_by', sa.String(length=64), nullable=False),
    sa.Column('counts', sa.Text(), nullable=False),
    sa.Column('ranges', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('purge_runs', schema=None) as batch_op:
        batch_op.create_index('ix_purge_runs_started_at', ['started_at'], unique=False)
    op.create_table('erasure_records',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('erased_customer', BigId, nullable=False),
    sa.Column('requester', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('done_by', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('finished_at', sa.Float(), nullable=True),
    sa.Column('identity_hashes', sa.Text(), nullable=False),
    sa.Column('counts', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('privacy_state',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('account_secrets',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('encoding_aes_key', sa.Text(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('account_id')
    )


def _key_ring(conn: sa.Connection):  # noqa: ANN202
    """The hub's key ring as ``serve`` finds it (hub/privacy/secrets.py), but a key file is never
    made here: a new key would open nothing."""
    import os
    import pathlib

    from hub.privacy.secrets import KeyRing, SecretKeyError, default_key_file
    value = os.environ.get("HUB_SECRET_KEY", "").strip()
    if value:
        return KeyRing.of(*value.split(","))
    sqlite_path = conn.engine.url.database if conn.dialect.name == "sqlite" else None
    path = pathlib.Path(os.environ.get("HUB_SECRET_KEY_FILE") or default_key_file(sqlite_path))
    if not path.exists():
        raise SecretKeyError(f"downgrade below 0003_privacy: the accounts' Tokens, EncodingAESKeys and secrets are "
                             f"stored encrypted and must be written back in clear, but no key is at hand (set "
                             f"HUB_SECRET_KEY, or HUB_SECRET_KEY_FILE; {path} does not exist)")
    return KeyRing.of(*path.read_text().split(), source=f"file:{path}")


def _unseal_account_secrets() -> None:
    """Since this revision the ``accounts`` rows hold no secret (the hub seals them into
    ``account_secrets`` at start): before that table goes, each account gets its own back in clear,
    as 0002 kept them. Without the key (or with one that does not open them) the downgrade is refused:
    dropping the table would blank every account's Token, EncodingAESKey and secret."""
    from hub.privacy.secrets import SecretKeyError
    if context.is_offline_mode():
        raise SecretKeyError("downgrade below 0003_privacy decrypts the accounts' secrets: it cannot be written as SQL")
    conn = op.get_bind()
    names = ('token', 'encoding_aes_key', 'secret')
    sealed = sa.table('account_secrets', sa.column('account_id'), *(sa.column(n) for n in names))
    accounts = sa.table('accounts', sa.column('id'), *(sa.column(n) for n in names))
    rows = conn.execute(sa.select(sealed)).all()
    if not rows:
        return
    ring = _key_ring(conn)
    for row in rows:
        try:
            clear = {n: ring.open(getattr(row, n)) for n in names}
        except SecretKeyError as exc:
            raise SecretKeyError(f"downgrade below 0003_privacy: account {row.account_id}: {exc}") from None
        conn.execute(sa.update(accounts).where(accounts.c.id == row.account_id).values(**clear))


def downgrade() -> None:
    _unseal_account_secrets()
    op.drop_table('account_secrets')
    op.drop_table('privacy_state')
    op.drop_table('erasure_records')
    with op.batch_alter_table('purge_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_purge_runs_started_at')
    op.drop_table('purge_runs')
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_legal_holds_target')
    op.drop_table('legal_holds')
    op.drop_table('retention_policies')
