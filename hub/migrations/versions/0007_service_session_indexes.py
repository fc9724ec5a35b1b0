"""service session indexes for the dashboard and bot analytics

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 01:50:09.186846
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # if_not_exists: a database adopted from before Alembic got its missing baseline tables from the
    # current models (hub/schema.py), indexes included
    for name, column in INDEXES:
        op.create_index(name, "service_sessions", [column], unique=False, if_not_exists=True)


def downgrade() -> None:
    for name, _column in reversed(INDEXES):
        op.drop_index(name, table_name="service_sessions", if_exists=True)


INDEXES = (("ix_sessions_closed_at", "closed_at"), ("ix_sessions_conversation", "conversation_id"),
           ("ix_sessions_handover_at", "handover_at"))
