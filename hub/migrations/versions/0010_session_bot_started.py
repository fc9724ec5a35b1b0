"""service sessions: when the customer began the contact with the bot (bot time ends at the handover)

Revision ID: 0010_session_bot_started
Revises: 0009_timer_claim_leases
Create Date: 2026-12-06 05:45:00
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0010_session_bot_started'
down_revision: Union[str, Sequence[str], None] = '0009_timer_claim_leases'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # a database adopted from before Alembic got its baseline tables from the current models, this
    # column included (hub/schema.py)
    if 'bot_started_at' in {c['name'] for c in sa.inspect(op.get_bind()).get_columns('service_sessions')}:
        return
    with op.batch_alter_table('service_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bot_started_at', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('service_sessions', schema=None) as batch_op:
        batch_op.drop_column('bot_started_at')
