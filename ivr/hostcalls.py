"""What the workers of one host last wrote of each recent call, in memory they all share.

gunicorn spreads a call's webhooks over its workers, so a worker's own memory of the calls it
wrote (`store.RecentCalls`) is found by the next webhook about one time in the number of workers;
on a miss the webhook reads the call back from Redis first. `ivr serve` maps this table before it
forks the workers, and every worker then finds there what any of them wrote last.

The table is a fixed number of slots, a call's slot chosen by a CRC of its sid. It takes no lock,
so that a worker killed in the middle of a write cannot stop the others: an entry carries a CRC of
its own bytes, and an entry torn by two writers, made by another call or too old reads as a miss.
What a hit returns is still only a guess that the Store's script checks (the turn and the number
of events), exactly as for a worker's own memory.
"""

from __future__ import annotations

import mmap
import struct
import time
import zlib
from collections.abc import Callable

SLOTS = 4096
SLOT_BYTES = 8192  # a call whose state and summary need more is simply not shared
# crc of the rest, written at (monotonic seconds), events, then the lengths of sid, state, summary
_HEADER = struct.Struct("<IdIHII")


class HostCalls:
    """A table of recent calls in shared memory: (state JSON, summary JSON, events) by sid."""

    def __init__(
        self,
        slots: int = SLOTS,
        seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots = slots
        self.seconds = seconds
        self.clock = clock  # CLOCK_MONOTONIC: one clock for every process of the host
        # Anonymous and shared: processes forked after this see the same pages.
        self._memory = mmap.mmap(-1, slots * SLOT_BYTES, flags=mmap.MAP_SHARED)

    def get(self, sid: str) -> tuple[float, bytes, bytes, int] | None:
        """When the call was last written, its state and summary (JSON) and event count then,
        if that was recent."""
        key = sid.encode()
        start = self._slot(key)
        header = self._memory[start : start + _HEADER.size]
        crc, written, events, sid_length, state_length, summary_length = _HEADER.unpack(header)
        size = sid_length + state_length + summary_length
        if sid_length != len(key) or _HEADER.size + size > SLOT_BYTES:
            return None
        body = self._memory[start + 4 : start + _HEADER.size + size]
        if zlib.crc32(body) != crc or body[_HEADER.size - 4 : _HEADER.size - 4 + sid_length] != key:
            return None
        if not 0 <= self.clock() - written <= self.seconds:
            return None
        state_at = _HEADER.size - 4 + sid_length
        summary_at = state_at + state_length
        return written, body[state_at:summary_at], body[summary_at:], events

    def put(self, sid: str, at: float, state: bytes, summary: bytes, events: int) -> None:
        """Remember the call as written at `at` (replacing whatever call had its slot)."""
        key = sid.encode()
        size = len(key) + len(state) + len(summary)
        if _HEADER.size + size > SLOT_BYTES:
            self.drop(sid)  # an older entry of the call would no longer be the last write
            return
        start = self._slot(key)
        rest = _HEADER.pack(0, at, events, len(key), len(state), len(summary))[4:]
        body = rest + key + state + summary
        self._memory[start : start + 4 + len(body)] = struct.pack("<I", zlib.crc32(body)) + body

    def drop(self, sid: str) -> None:
        """Forget a call, if its slot still holds it."""
        key = sid.encode()
        if self.get(sid) is not None:
            start = self._slot(key)
            self._memory[start : start + 4] = b"\0\0\0\0"

    def _slot(self, key: bytes) -> int:
        return (zlib.crc32(key) % self.slots) * SLOT_BYTES


_shared: HostCalls | None = None


def share() -> HostCalls:
    """Map the table for the processes this one forks from now on (`ivr serve`, before gunicorn)."""
    global _shared
    if _shared is None:
        _shared = HostCalls()
    return _shared


def shared() -> HostCalls | None:
    """The table mapped by the process this one was forked from, if any."""
    return _shared
