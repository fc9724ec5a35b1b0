"""accounts: an Official Account's message mode (plain | compat | safe: safe refuses unencrypted posts)

Revision ID: 0013_account_message_mode
Revises: 0012_early_recalls
Create Date: 2026-12-06 23:00:00
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0013_account_message_mode'
down_revision: Union[str, Sequence[str], None] = '0012_early_recalls'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # a database adopted from before Alembic got its baseline tables from the current models, this
    # column included (hub/schema.py)
    if 'message_mode' in {c['name'] for c in sa.inspect(op.get_bind()).get_columns('accounts')}:
        return
    with op.batch_alter_table('accounts') as batch:  # accounts as they were take both (compat)
        batch.add_column(sa.Column('message_mode', sa.String(length=8), server_default='compat', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('message_mode')
