"""HUB_BURST_JOB_SHARE: the share of a process's loop its background work keeps during a burst of
callbacks, from the environment or the config file to the running hub's trickle, checked on the way."""
from __future__ import annotations

import asyncio

import pytest

from hub.app import HUB, create_app
from hub.config import load_config
from tests.conftest import start_burst


def test_the_share_is_read_and_range_checked(tmp_path):
    assert load_config(env={}).burst_job_share == 0.1
    assert load_config(env={"HUB_BURST_JOB_SHARE": "0.02"}).burst_job_share == 0.02
    path = tmp_path / "hub.toml"
    path.write_text("[hub]\nburst_job_share = 0.5\n")
    assert load_config(str(path), env={}).burst_job_share == 0.5
    for value, why in (("0", "HUB_BURST_JOB_SHARE: 0.0 is out of range (must be between 0.001 and 1.0)"),
                       ("1.5", "HUB_BURST_JOB_SHARE: 1.5 is out of range"),
                       ("half", "HUB_BURST_JOB_SHARE: 'half' is not a number"),
                       ("nan", "HUB_BURST_JOB_SHARE: nan is not a finite number")):
        with pytest.raises(ValueError) as exc:
            load_config(env={"HUB_BURST_JOB_SHARE": value})
        assert why in str(exc.value), (value, exc.value)


async def pause_after_a_piece(hub, seconds: float) -> float:  # noqa: ANN001
    """Under a burst, run one piece of background work taking ``seconds``: how long the next piece
    is held back after it (the trickle's pause)."""
    pipe = await start_burst(hub)
    loop = asyncio.get_running_loop()
    await pipe.trickle.run(lambda: asyncio.sleep(seconds))
    ended = loop.time()
    started = []
    await pipe.trickle.run(lambda: asyncio.sleep(0, started.append(loop.time())))
    return started[0] - ended


@pytest.mark.parametrize("share, low, high", [(0.5, 0.04, 0.2), (0.1, 0.36, 0.9)])
async def test_a_burst_holds_background_work_back_by_the_configured_share(aiohttp_client, hub_config, clock,
                                                                           share, low, high):
    """A piece of 50 ms is followed by a pause of 50 ms x (1 - share) / share: 50 ms at 0.5, 450 ms
    at 0.1. Automatic sends take their turns in the same trickle."""
    client = await aiohttp_client(create_app(hub_config.with_overrides(burst_job_share=share), clock))
    hub = client.server.app[HUB]
    assert hub.pipeline.trickle.share == share and hub.outbound.trickle is hub.pipeline.trickle
    pause = await pause_after_a_piece(hub, 0.05)
    assert low <= pause <= high, pause
