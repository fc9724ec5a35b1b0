"""privacy: retention policies, legal holds, purge runs, erasure records, sealed account secrets

Revision ID: 0003_privacy
Revises: 0002_timer_claims
Create Date: 2026-11-23 01:00:00
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


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


def downgrade() -> None:
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
