"""Pure dashboard figures: percentiles, reply gaps, per-agent / per-group breakdowns, the 48 h share."""
from __future__ import annotations

import pytest

from hub.supervisor.metrics import (Msg, SessionTimes, answered_share, breakdown, day_start, in_human_sessions,
                                    mean, percentile, rate, reply_gaps)


def test_percentile_interpolates_between_ranks():
    assert percentile([], 50) is None
    assert percentile([7], 90) == 7
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == pytest.approx(9.1)
    assert percentile([30, 10, 20], 0) == 10 and percentile([30, 10, 20], 100) == 30
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_mean_and_rate_are_none_without_data():
    assert mean([]) is None and mean([1, 2, 6]) == 3
    assert rate(0, 0) is None and rate(1, 3) == 0.3333


def test_day_start_is_local_midnight():
    # 2024-11-25 02:00 UTC = 10:00 in Shanghai -> midnight Shanghai = 2024-11-24 16:00 UTC
    assert day_start(1_732_500_000.0, "Asia/Shanghai") == 1_732_464_000.0
    assert day_start(1_732_500_000.0, "UTC") == 1_732_492_800.0


def test_reply_gaps_each_customer_message_to_next_agent_reply():
    msgs = [Msg(1, 100, "customer"), Msg(1, 130, "customer"), Msg(1, 160, "agent:7"),
            Msg(1, 200, "customer"), Msg(1, 205, "bot"), Msg(1, 260, "agent:8"),
            Msg(2, 100, "customer"),  # never answered by an agent: no gap
            Msg(3, 50, "agent:7"), Msg(3, 60, "customer"), Msg(3, 70, "agent:7")]
    gaps = [(g.conversation_id, g.agent_id, g.seconds) for g in reply_gaps(msgs)]
    assert gaps == [(1, 7, 60), (1, 7, 30), (1, 8, 60), (3, 7, 10)]


def test_customer_messages_outside_human_sessions_are_not_reply_times():
    msgs = [Msg(1, 10, "customer"), Msg(1, 500, "customer"), Msg(1, 520, "agent:3")]
    kept = in_human_sessions(msgs, {1: [(400, None)]})
    assert [m.at for m in kept] == [500, 520]
    assert [g.seconds for g in reply_gaps(kept)] == [20]
    assert in_human_sessions([Msg(2, 5, "customer")], {2: [(0, 4)]}) == []


def _s(id, conv, agent, group, created, handover, first_reply, state="active"):  # noqa: A002, ANN001, ANN202
    return SessionTimes(id, conv, agent, group, created, handover, first_reply, None, state)


def test_breakdown_first_response_counts_from_handover_and_bot_time_apart():
    sessions = [_s(1, 1, 7, "presales", 0, 100, 130),     # 30 s first response, 100 s with the bot
                _s(2, 2, 7, "presales", 50, 60, 160),     # 100 s
                _s(3, 3, 8, "aftersales", 0, 0, 10),      # 10 s
                _s(4, 4, 8, "aftersales", 0, 40, None),   # still waiting
                _s(5, 5, None, "aftersales", 0, 90, None, "closed")]  # closed unanswered from the queue
    gaps = reply_gaps([Msg(1, 110, "customer"), Msg(1, 130, "agent:7"), Msg(3, 5, "customer"), Msg(3, 10, "agent:8")])
    out = breakdown(sessions, gaps).as_json()
    total = out["total"]
    assert total["sessions"] == 5 and total["closed"] == 1 and total["awaiting_first_reply"] == 1
    assert total["first_response_p50"] == 30 and total["first_response_p90"] == 86.0
    assert total["bot_time_avg"] == (100 + 10 + 0 + 40 + 90) / 5
    assert total["avg_reply"] == 12.5 and total["replies"] == 2
    assert out["agents"]["7"]["first_response_p50"] == 65 and out["agents"]["7"]["avg_reply"] == 20
    assert out["agents"]["8"]["sessions"] == 2 and out["agents"]["8"]["avg_reply"] == 5
    assert out["groups"]["presales"]["sessions"] == 2 and out["groups"]["presales"]["avg_reply"] == 20
    assert out["groups"]["aftersales"]["first_response_p50"] == 10
    assert out["groups"]["aftersales"]["avg_reply"] == 5


def test_answered_share_leaves_out_messages_still_inside_their_window():
    share = answered_share(total=100, answered=85, pending=5)
    assert share.judged == 95 and share.share == round(85 / 95, 4)
    assert share.as_json()["healthy"] is False
    assert answered_share(10, 10, 0).as_json()["healthy"] is True
    assert answered_share(0, 0, 0).as_json() == {"answered": 0, "judged": 0, "pending": 0, "share": None,
                                                 "healthy": None, "threshold": 0.9}
    with pytest.raises(ValueError):
        answered_share(3, 3, 1)
