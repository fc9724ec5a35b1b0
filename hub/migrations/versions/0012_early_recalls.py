"""archive: recalls that came before the message they recall (its delivery retried after them)

Revision ID: 0012_early_recalls
Revises: 0011_custom_order_shop_keys
Create Date: 2026-12-06 17:15:00
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0012_early_recalls'
down_revision: Union[str, Sequence[str], None] = '0011_custom_order_shop_keys'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('early_recalls',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('msg_key', sa.String(length=160), nullable=False),
    sa.Column('recalled_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'msg_key')
    )


def downgrade() -> None:
    op.drop_table('early_recalls')
