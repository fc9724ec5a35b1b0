"""timer claims: a timer armed in several hub processes fires once

Revision ID: 0002_timer_claims
Revises: 0001
Create Date: 2026-11-23 00:50:00
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0002_timer_claims'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('timer_claims',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('worker', sa.String(length=96), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('timer_claims', schema=None) as batch_op:
        batch_op.create_index('ix_timer_claims_at', ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('timer_claims', schema=None) as batch_op:
        batch_op.drop_index('ix_timer_claims_at')
    op.drop_table('timer_claims')
