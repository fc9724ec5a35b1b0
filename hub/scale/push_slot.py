"""One push per interval across hub processes (Redis): the first process to set the key takes the slot.

With several processes every one of them sees session changes (its own) and runs a heartbeat, and
each would push the same room its own copy: supervisors got one ``dashboard.update`` per process.
A process about to push takes the slot; one that finds it taken pushes when it frees instead.
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

# 0 when this caller took the slot, else the milliseconds until it frees (at least 1: under a millisecond
# left, or just expired, it is still someone else's)
TAKE_LUA = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left < 1 then return 1 end
return left
"""


class PushSlot:
    def __init__(self, redis: Any, key: str, every: float, owner: str = ""):
        self.key = key
        self.every = every
        self.owner = owner
        self._take = redis.register_script(TAKE_LUA)

    async def take(self) -> float:
        """0.0 when this process may push now (and holds the slot for ``every`` seconds); otherwise the
        seconds until the slot frees. Redis unavailable: 0.0 (a duplicate push is better than none)."""
        try:
            left = int(await self._take(keys=[self.key], args=[self.owner or "-", max(1, int(self.every * 1000))]))
        except Exception as exc:  # noqa: BLE001 - redis down: push from here
            log.debug("push slot %s unavailable (%s): pushing", self.key, exc)
            return 0.0
        return left / 1000
