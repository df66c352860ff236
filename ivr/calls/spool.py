"""The disk spool: events that could not reach Redis, kept on the host until Redis is back.

Each spooled line carries an id, so a replay interrupted half-way and started again records
every event once. The file is emptied only after Redis acknowledged every line in it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

from ivr.calls.events import CallEvent, CallStarted, TwilioStatus, from_dict, to_dict
from ivr.calls.summary import FINAL_STATUSES, CallSummary
from ivr.errors import StoreUnavailable
from ivr.store import Store

log = logging.getLogger(__name__)

SPOOL_FILE = "events.jsonl"


def spool_path(data_dir: Path) -> Path:
    """The spool file of a data dir."""
    return data_dir / "spool" / SPOOL_FILE


def new_batch_id() -> str:
    """The id of a batch of events: the same for its direct write and its spooled copy.

    128 random bits, unique but not secret: from the process's own generator (seeded from the
    system's, again in each forked worker), not uuid4, whose system call let go of the
    interpreter lock on every status callback."""
    return f"{random.getrandbits(128):032x}"


def spool(data_dir: Path, sid: str, events: Sequence[CallEvent], batch: str = "") -> None:
    """Append a call's events to the spool, durably (fsync), as one line.

    `batch` is the id the direct write already tried: a write that reached Redis after its
    client gave up is then not recorded twice by the replay.
    """
    record = {"id": batch or new_batch_id(), "sid": sid, "events": [to_dict(e) for e in events]}
    _append(data_dir, record)


def _append(data_dir: Path, record: dict[str, Any]) -> None:
    path = spool_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = json.dumps(record, ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(lines)
        handle.flush()
        os.fsync(handle.fileno())


def spool_cross_call(data_dir: Path, sid: str, before: CallSummary, events: Sequence[str]) -> None:
    """Append a call's cross-call writes that a Cluster node failed (`Store.keep_cross_call`):
    the summary they start from, and the write's events (JSON) if the stream still needs them."""
    cross = {"before": before.to_json(), "events": list(events)}
    _append(data_dir, {"id": new_batch_id(), "sid": sid, "cross": cross})


def replay(
    data_dir: Path,
    store: Store,
    then: Callable[[str, CallEvent], None] | None = None,
    close: Callable[[str, CallEvent, str, CallStarted | None], None] | None = None,
) -> int:
    """Record every spooled event in Redis, then empty the spool; the number replayed.

    A spooled final status is handed to `close` (with its batch id, and the call's start when
    Redis has none) when given, so that it closes the call's record as it would have done live.

    Stops at the first Redis failure, keeping the whole file (lines already replayed are
    recognised by their ids next time). Unreadable lines, and lines Redis refuses as such,
    are moved aside, never dropped.
    """
    path = spool_path(data_dir)
    if not path.exists():
        return 0
    replayed = 0
    with open(path, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # writers wait: no line lands between read and truncate
        for number, line in enumerate(handle.read().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                sid, spooled_id, events, cross = _entry(line)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                _set_aside(path, line, f"line {number}: {exc}")
                continue
            try:
                if cross is not None:  # the call's own events are on record already
                    store.replay_cross_call(sid, spooled_id, *cross)
                    continue
                if any(isinstance(e, CallStarted) for e in events):
                    known = store.summary(sid)
                    if known is not None and known.started_at is not None:
                        # The call's first webhook reached Redis after all: one start only.
                        events = [e for e in events if not isinstance(e, CallStarted)]
                final = _final_status(events)
                if close is not None and final is not None:
                    close(sid, final[0], spooled_id, final[1])
                else:
                    store.record(sid, events, spooled_id=spooled_id)
                if then is not None:
                    for event in events:
                        then(sid, event)
            except StoreUnavailable as exc:
                if type(exc.__cause__) is redis.ResponseError:
                    # Redis refused the line itself (WRONGTYPE, a script error), not for now
                    # (read-only, out of memory, down): it would stop every replay for good.
                    _set_aside(path, line, f"line {number}: Redis refused it: {exc}")
                    continue
                log.warning("spool replay stopped after %d events: %s", replayed, exc)
                return replayed
            replayed += len(events)
        handle.seek(0)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())
    if replayed:
        log.info("replayed %d spooled events into Redis", replayed)
    return replayed


def _final_status(events: Sequence[CallEvent]) -> tuple[CallEvent, CallStarted | None] | None:
    """A spooled final status callback, and the call's start spooled with it when the call is
    not on record; None for other events."""
    if not events:
        return None
    first, *rest = events
    if not isinstance(first, TwilioStatus) or first.status not in FINAL_STATUSES:
        return None
    if not rest:
        return first, None
    if len(rest) == 1 and isinstance(rest[0], CallStarted):
        return first, rest[0]
    return None


def _entry(line: str) -> tuple[str, str, list[CallEvent], tuple[CallSummary, list[str]] | None]:
    """A spool line: its call, id, events, and for kept cross-call writes their summary before
    and stream events."""
    record = json.loads(line)
    sid, spooled_id = str(record["sid"]), str(record["id"])
    if "cross" in record:
        before = CallSummary.from_json(record["cross"]["before"])
        return sid, spooled_id, [], (before, [str(e) for e in record["cross"]["events"]])
    raw = record["events"] if "events" in record else [record["event"]]
    return sid, spooled_id, [from_dict(data) for data in raw], None


def _set_aside(path: Path, line: str, why: str) -> None:
    log.error("spool %s: entry set aside in %s (%s)", path, path.with_suffix(".bad").name, why)
    with open(path.with_suffix(".bad"), "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
