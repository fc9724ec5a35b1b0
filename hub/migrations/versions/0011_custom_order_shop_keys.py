"""orders: a custom order with a shop id is stored as ``shop_id:order_id`` (hub.orders.model.order_key)

Two shops sending the hub the same order id were one row, each overwriting the other. Rows stored
before keep their plain id; this gives them the shop-scoped key their next update is looked up by
(without it, that update would make a second row). A row whose key would not fit (64 characters) or
whose key is already taken is left as it is.

Revision ID: 0011_custom_order_shop_keys
Revises: 0010_session_bot_started
Create Date: 2026-12-06 06:05:00
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0011_custom_order_shop_keys'
down_revision: Union[str, Sequence[str], None] = '0010_session_bot_started'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.execute(sa.text(
        "UPDATE orders SET order_id = shop_id || ':' || order_id "
        "WHERE platform = 'custom' AND shop_id <> '' "
        "AND substr(order_id, 1, length(shop_id) + 1) <> shop_id || ':' "
        "AND length(shop_id) + 1 + length(order_id) <= 64 "
        "AND NOT EXISTS (SELECT 1 FROM orders o2 WHERE o2.platform = 'custom' "
        "AND o2.order_id = orders.shop_id || ':' || orders.order_id)"))


def downgrade() -> None:
    op.execute(sa.text(
        "UPDATE orders SET order_id = substr(order_id, length(shop_id) + 2) "
        "WHERE platform = 'custom' AND shop_id <> '' "
        "AND substr(order_id, 1, length(shop_id) + 1) = shop_id || ':' "
        "AND NOT EXISTS (SELECT 1 FROM orders o2 WHERE o2.platform = 'custom' "
        "AND o2.order_id = substr(orders.order_id, length(orders.shop_id) + 2))"))
