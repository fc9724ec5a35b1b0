"""Order model helpers: the order of normalised statuses and which update is newer (never moving an
order back), yuan ↔ fen conversion, GMT+8 platform times → epoch seconds, and Order being frozen and
hashable."""
from __future__ import annotations

import dataclasses

import pytest

from hub.orders import ORDER_STATUSES, is_newer, may_move, parse_order, status_rank, yuan_to_fen
from hub.orders.model import fen_to_yuan, gmt8_to_epoch
from tests.test_order_payloads import load, utc


# ---------------------------------------------------------------- status order, money, time

def _snap(status: str, modified: float) -> dict:
    return {"status": status, "modified_at": modified}


def test_status_rank_order():
    ranks = [status_rank(s) for s in ORDER_STATUSES]
    assert ranks == sorted(ranks)
    assert status_rank("pending_payment") < status_rank("paid") < status_rank("shipped") < status_rank("completed")
    with pytest.raises(ValueError):
        status_rank("WAIT_BUYER_PAY")


def test_is_newer_never_moves_back():
    stored = parse_order("taobao", load("taobao_order.json"))  # shipped
    assert is_newer(None, stored)
    assert not is_newer(stored, stored)  # a repeated message changes nothing
    late_paid = dataclasses.replace(stored, status="paid", modified_at=stored.modified_at - 60)
    assert not is_newer(stored, late_paid)  # late message: older modified
    assert not is_newer(stored, dataclasses.replace(stored, status="completed", modified_at=stored.modified_at - 1))
    assert not is_newer(stored, dataclasses.replace(late_paid, modified_at=stored.modified_at + 60))  # backwards
    assert is_newer(stored, dataclasses.replace(stored, status="completed", modified_at=stored.modified_at + 1))
    assert is_newer(stored, dataclasses.replace(stored, status="completed"))  # same second, higher rank
    assert not is_newer(stored, dataclasses.replace(stored, status="paid"))  # same second, lower rank
    assert is_newer(stored, dataclasses.replace(stored, receiver_address="x", modified_at=stored.modified_at + 1))
    # snapshots (mappings) work too
    assert is_newer(_snap("refunding", 10), _snap("shipped", 11))  # refund refused: legitimately back
    assert not is_newer(_snap("refunding", 10), _snap("pending_payment", 11))
    assert not is_newer(_snap("closed", 10), _snap("paid", 11))
    assert is_newer(_snap("closed", 10), _snap("refunded", 11))
    assert is_newer(_snap("pending_payment", 10), _snap("closed", 11))
    assert may_move("paid", "paid") and not may_move("completed", "shipped")


@pytest.mark.parametrize("text,fen", [
    ("200.07", 20007), ("0", 0), ("0.1", 10), ("0.10", 10), ("1.230", 123), ("-5.00", -500), (" 99.00 ", 9900),
    ("999999999999999.99", 99999999999999999), ("0.01", 1), ("12", 1200),
])
def test_yuan_to_fen(text, fen):
    assert yuan_to_fen(text) == fen


@pytest.mark.parametrize("bad", ["", " ", "abc", "1.234", "1e3", "1,000", ".5", "5.", "+1", "--1", "NaN", "١٢",
                                 "1 000", "9999999999999999", 1.5, 100, None, True, b"1.00"])
def test_yuan_to_fen_rejects(bad):
    with pytest.raises(ValueError):
        yuan_to_fen(bad)


def test_fen_to_yuan_round_trip():
    for fen in (0, 1, 10, 20007, -500, 99999999999999999):
        assert yuan_to_fen(fen_to_yuan(fen)) == fen


def test_gmt8_to_epoch():
    assert gmt8_to_epoch("2024-05-20 10:00:40") == utc("2024-05-20 02:00:40")
    assert gmt8_to_epoch("2024-01-01 00:00:00") == utc("2023-12-31 16:00:00")  # crosses midnight and the year
    for bad in ("2024-05-20T10:00:40", "2024-5-20 10:00:40", "2024-02-30 00:00:00", "", 1716170440):
        with pytest.raises(ValueError):
            gmt8_to_epoch(bad)


def test_order_is_frozen_and_hashable():
    o = parse_order("jd", load("jd_order.json"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.status = "paid"  # type: ignore[misc]
    assert hash(o) == hash(parse_order("jd", load("jd_order.json")))
