"""customers: tags an agent took off a customer, so the keyword rules do not put them back

Revision ID: 0014_tag_removals
Revises: 0013_account_message_mode
Create Date: 2026-12-07 01:30:00
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0014_tag_removals'
down_revision: Union[str, Sequence[str], None] = '0013_account_message_mode'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('customer_tag_removals',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('by', sa.String(length=64), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('customer_id', 'name')
    )


def downgrade() -> None:
    op.drop_table('customer_tag_removals')
