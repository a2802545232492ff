"""One user cannot grow the audit trail without bound: presses past the rate limit are summarised,
one row per burst with the count and the time span (requested = the first, ended = the last)."""

import pytest

from supervision import presses
from supervision.monitoring import PRESS_LIMIT
from tests.live_stack import bridge, press, roster, rows  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

FLOOD = 300


async def test_a_flood_of_refused_presses_is_one_row_with_its_count(fakepbx, bridge, roster):
    people, phones = roster
    command = {"type": "spy", "target": phones["anna"].pk, "mode": "barge"}  # Anna has no call: refused
    for _ in range(FLOOD):
        await press(bridge, people["petrova"], command)
    for _ in range(FLOOD // 3):
        await press(bridge, people["smirnov"], {"type": "spy", "target": phones["vera"].pk, "mode": "listen"})

    trail = await rows()
    petrova = [row for row in trail if row["user_id"] == people["petrova"].pk]
    assert [row["reason"] for row in petrova] == ["no_call"] * PRESS_LIMIT + ["rate_limited"]
    burst = petrova[-1]
    assert burst["outcome_detail"] == f"{FLOOD - PRESS_LIMIT} presses refused: Too many presses; wait a few seconds."
    assert burst["requested_at"] <= burst["ended_at"]
    smirnov = [row for row in trail if row["user_id"] == people["smirnov"].pk]
    assert [row["reason"] for row in smirnov] == ["no_call"] * PRESS_LIMIT + ["rate_limited"]
    assert smirnov[-1]["outcome_detail"].startswith(f"{FLOOD // 3 - PRESS_LIMIT} presses refused: ")
    assert len(trail) == 2 * (PRESS_LIMIT + 1)


async def test_a_new_burst_gets_a_new_row(fakepbx, bridge, roster, monkeypatch):
    monkeypatch.setattr(presses.RefusalBursts, "BURST_GAP", -1.0)  # every refusal is a burst of its own
    people, phones = roster
    command = {"type": "spy", "target": phones["anna"].pk, "mode": "barge"}
    for _ in range(PRESS_LIMIT + 3):
        await press(bridge, people["petrova"], command)
    limited = await rows(reason="rate_limited")
    assert len(limited) == 3 and {row["outcome_detail"] for row in limited} == {"Too many presses; wait a few seconds."}
