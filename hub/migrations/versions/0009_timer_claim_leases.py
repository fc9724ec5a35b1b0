"""timer claims become leases: a firing whose runner died is taken over by another process

Revision ID: 0009_timer_claim_leases
Revises: 0008_platform_tokens
Create Date: 2026-12-06 05:20:00
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0009_timer_claim_leases'
down_revision: Union[str, Sequence[str], None] = '0008_platform_tokens'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # claims from before are done (their firings ran, or are long past): only new ones are leases
    with op.batch_alter_table('timer_claims', schema=None) as batch_op:
        batch_op.add_column(sa.Column('until', sa.Float(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('done', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('timer_claims', schema=None) as batch_op:
        batch_op.drop_column('done')
        batch_op.drop_column('until')
