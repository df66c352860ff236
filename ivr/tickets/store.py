"""Tickets in Redis: made once per recording, queued in a durable outbox, their delivery tracked.

Every ticket key carries the one hash tag `{tickets}`: making a ticket touches the recording
index, the day's counter, the documents, the status index and the outbox in one script, and a
Redis Cluster runs a script only over keys of one slot. Voicemails are few, so one slot is ample.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

import redis

from ivr.tickets.model import (
    STATUSES,
    TICKET_ID,
    Recording,
    Ticket,
    TicketError,
    Transcript,
    Voicemail,
    new_ticket,
    ticket_prefix,
)

BY_RECORDING_KEY = "ivr:{tickets}:by-recording"  # hash: RecordingSid -> ticket id
SEQUENCE_KEY = "ivr:{{tickets}}:seq:{0}"  # counter: tickets made on one UTC day (YYYYMMDD)
DOCS_KEY = "ivr:{tickets}:docs"  # hash: ticket id -> JSON of the ticket as made
STATE_KEY = "ivr:{{tickets}}:state:{0}"  # hash: status, recording, transcript, attempts:<sink>, ...
INDEX_KEY = "ivr:{tickets}:index"  # sorted set: ticket id by creation time
STATUS_KEY = "ivr:{{tickets}}:status:{0}"  # sorted set per status: ticket id by creation time
OUTBOX_KEY = "ivr:{tickets}:outbox"  # stream: one entry {ticket: id} per delivery round to run
DUE_KEY = "ivr:{tickets}:due"  # sorted set: ticket id by the time its next retry is due
WORKER_KEY = "ivr:{{tickets}}:worker:{0}"  # string with a TTL: a live worker's heartbeat
GROUP = "workers"  # the outbox's consumer group

SEQUENCE_TTL_SECONDS = 3 * 24 * 3600
PLACEHOLDER = "\x00id\x00"

# Make a ticket unless the recording already has one; the id is numbered here so that two
# hosts racing on one recording, or on one day's counter, cannot collide.
_CREATE = """
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then return {0, existing} end
local n = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[6])
local id = ARGV[2] .. string.format('%04d', n)
redis.call('HSET', KEYS[1], ARGV[1], id)
redis.call('HSET', KEYS[3], id, ARGV[3] .. id .. ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[5], id)
redis.call('ZADD', KEYS[5], ARGV[5], id)
redis.call('XADD', KEYS[6], '*', 'ticket', id)
return {1, id}
"""

# Move the retries that are due into the outbox, each exactly once.
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('XADD', KEYS[2], '*', 'ticket', id)
end
return #due
"""


class TicketStore:
    """The tickets' state in Redis, over an injected connection."""

    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection
        self._create = connection.register_script(_CREATE)
        self._promote = connection.register_script(_PROMOTE)

    # Making and reading ------------------------------------------------------------------

    def create(self, facts: Voicemail) -> tuple[Ticket, bool] | None:
        """The recording's ticket, made and queued only the first time (None: empty recording)."""
        if facts.is_empty():
            return None
        facts.validate()
        draft = new_ticket(facts, PLACEHOLDER)
        text = json.dumps(draft.as_dict(), ensure_ascii=False)
        head, tail = text.split(json.dumps(PLACEHOLDER), 1)
        prefix = ticket_prefix(facts.at)
        keys = [
            BY_RECORDING_KEY,
            SEQUENCE_KEY.format(prefix[2:10]),
            DOCS_KEY,
            INDEX_KEY,
            STATUS_KEY.format("new"),
            OUTBOX_KEY,
        ]
        args = [facts.recording_sid, prefix, head + '"', '"' + tail]
        args += [str(facts.at.timestamp()), str(SEQUENCE_TTL_SECONDS)]
        made, raw_id = cast(list[Any], self._create(keys=keys, args=args))
        ticket = self.get(_text(raw_id))
        if ticket is None:  # pragma: no cover - the script wrote it in the same step
            raise TicketError(f"ticket {_text(raw_id)} vanished")
        return ticket, bool(made)

    def get(self, ticket_id: str) -> Ticket | None:
        """One ticket with its delivery state, or None."""
        found = self.many([ticket_id])
        return found[0] if found else None

    def by_recording(self, recording_sid: str) -> Ticket | None:
        """The ticket of a recording, if it has one."""
        raw = cast(bytes | None, self.redis.hget(BY_RECORDING_KEY, recording_sid))
        return self.get(raw.decode()) if raw else None

    def many(self, ids: Iterable[str]) -> list[Ticket]:
        """The tickets of `ids` that exist, in that order."""
        ids = list(ids)
        if not ids:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(DOCS_KEY, ids)
            for ticket_id in ids:
                pipe.hgetall(STATE_KEY.format(ticket_id))
            docs, *states = pipe.execute()
        return [
            _assemble(json.loads(doc), state)
            for doc, state in zip(docs, states, strict=True)
            if doc is not None
        ]

    def find(self, status: str | None = None, limit: int = 100) -> list[Ticket]:
        """Tickets, newest first, all or of one status."""
        if status is not None and status not in STATUSES:
            raise TicketError(f"no status {status!r} (known: {', '.join(STATUSES)})")
        key = STATUS_KEY.format(status) if status else INDEX_KEY
        ids = cast(list[bytes], self.redis.zrevrange(key, 0, max(limit, 1) - 1))
        return self.many(i.decode() for i in ids)

    def counts(self) -> dict[str, int]:
        """How many tickets each status has."""
        with self.redis.pipeline(transaction=False) as pipe:
            for status in STATUSES:
                pipe.zcard(STATUS_KEY.format(status))
            return dict(zip(STATUSES, pipe.execute(), strict=True))

    # Delivery state ------------------------------------------------------------------------

    def set_recording(self, ticket_id: str, recording: Recording) -> None:
        """Keep where the audio is now, or why it is not."""
        self.redis.hset(STATE_KEY.format(ticket_id), "recording", json.dumps(recording.as_dict()))

    def set_transcript(self, ticket_id: str, transcript: Transcript) -> None:
        """Keep the transcript (a text always wins over a note of why there is none)."""
        key = STATE_KEY.format(ticket_id)
        if transcript.text is None:
            self.redis.hsetnx(key, "transcript", json.dumps(transcript.as_dict()))
        else:
            self.redis.hset(key, "transcript", json.dumps(transcript.as_dict()))

    def begin_attempt(self, ticket_id: str, sink: str) -> int:
        """Count one more attempt at a sink, before it is made (so a crash still counts it)."""
        return int(cast(int, self.redis.hincrby(STATE_KEY.format(ticket_id), f"attempts:{sink}")))

    def sink_result(
        self, ticket_id: str, sink: str, state: str, error: str | None, due: float | None = None
    ) -> None:
        """Keep how a sink's latest attempt went and when it is next due."""
        key = STATE_KEY.format(ticket_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, f"sink:{sink}", state)
            if due is None:
                pipe.hdel(key, f"due:{sink}")
            else:
                pipe.hset(key, f"due:{sink}", str(due))
            if error:
                pipe.hset(key, "last_error", f"{sink}: {error}")
            pipe.execute()

    def due_at(self, ticket_id: str, sink: str) -> float | None:
        """When a sink's next attempt is due (None: now)."""
        raw = cast(bytes | None, self.redis.hget(STATE_KEY.format(ticket_id), f"due:{sink}"))
        return float(raw) if raw else None

    def note_error(self, ticket_id: str, error: str) -> None:
        """Keep the latest error of a ticket."""
        self.redis.hset(STATE_KEY.format(ticket_id), "last_error", error)

    def finish_round(
        self, ticket_id: str, status: str, entry_id: str | None, due: float | None
    ) -> None:
        """End one delivery round: the new status, the next retry if any, the outbox entry done."""
        with self.redis.pipeline(transaction=True) as pipe:
            self._set_status(pipe, ticket_id, status)
            if due is None:
                pipe.zrem(DUE_KEY, ticket_id)
            else:
                pipe.zadd(DUE_KEY, {ticket_id: due})
            if entry_id is not None:
                pipe.xack(OUTBOX_KEY, GROUP, entry_id)
                pipe.xdel(OUTBOX_KEY, entry_id)
            pipe.execute()

    def retry(self, ticket_id: str) -> Ticket:
        """Put a ticket back in the outbox, its failed and dead sinks' attempts starting over, its
        sinks waiting out a backoff tried at once, and the download of audio that was refused or
        gave up tried again."""
        if not TICKET_ID.match(ticket_id):
            raise TicketError(f"not a ticket id: {ticket_id!r} (like T-20261203-0001)")
        ticket = self.get(ticket_id)
        if ticket is None:
            raise TicketError(f"no ticket {ticket_id}")
        key = STATE_KEY.format(ticket_id)
        with self.redis.pipeline(transaction=True) as pipe:
            for sink, state in ticket.sinks.items():
                if state in ("failed", "dead"):
                    pipe.hset(key, f"sink:{sink}", "pending")
                    pipe.hdel(key, f"attempts:{sink}", f"due:{sink}")
                elif state == "pending":
                    pipe.hdel(key, f"due:{sink}")  # waiting out a backoff: asked for now
            pipe.hdel(key, "attempts:recording")
            # Once IVR_RECORDING_HOSTS is fixed, say, the audio may be kept after all.
            audio_missing = ticket.recording.path is None and ticket.recording.error is not None
            if audio_missing:
                fresh = Recording(ticket.recording.url, ticket.recording.seconds)
                pipe.hset(key, "recording", json.dumps(fresh.as_dict()))
            if (
                ticket.status != "delivered"
                or audio_missing
                or any(s in ("failed", "dead") for s in ticket.sinks.values())
            ):
                self._set_status(pipe, ticket_id, "new")
                pipe.zrem(DUE_KEY, ticket_id)
                pipe.xadd(OUTBOX_KEY, {"ticket": ticket_id})
            pipe.execute()
        return cast(Ticket, self.get(ticket_id))

    def retry_dead(self) -> list[Ticket]:
        """Retry every dead ticket."""
        ids = cast(list[bytes], self.redis.zrange(STATUS_KEY.format("dead"), 0, -1))
        return [self.retry(i.decode()) for i in ids]

    def _set_status(self, pipe: redis.client.Pipeline, ticket_id: str, status: str) -> None:
        score = cast(float | None, self.redis.zscore(INDEX_KEY, ticket_id)) or 0.0
        for other in STATUSES:
            if other != status:
                pipe.zrem(STATUS_KEY.format(other), ticket_id)
        pipe.zadd(STATUS_KEY.format(status), {ticket_id: score})
        pipe.hset(STATE_KEY.format(ticket_id), "status", status)

    # The outbox ------------------------------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the outbox and its consumer group if they are not there yet."""
        try:
            self.redis.xgroup_create(OUTBOX_KEY, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def promote_due(self, now: float, limit: int = 100) -> int:
        """Queue the retries due by `now`; how many were."""
        return int(cast(int, self._promote(keys=[DUE_KEY, OUTBOX_KEY], args=[now, limit])))

    def next_due(self) -> float | None:
        """When the earliest scheduled retry is due."""
        first = cast(list[tuple[bytes, float]], self.redis.zrange(DUE_KEY, 0, 0, withscores=True))
        return first[0][1] if first else None

    def read(self, consumer: str, count: int, block_ms: int) -> list[tuple[str, str]]:
        """New outbox entries for this consumer: (entry id, ticket id)."""
        try:
            answer = cast(
                list[Any],
                self.redis.xreadgroup(
                    GROUP, consumer, {OUTBOX_KEY: ">"}, count=count, block=block_ms or None
                ),
            )
        except redis.ResponseError as exc:
            self._group_lost(exc)
            return []
        return _entries(answer[0][1] if answer else [])

    def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[tuple[str, str]]:
        """Entries a dead worker took and never finished, now this consumer's."""
        try:
            answer = cast(
                list[Any],
                self.redis.xautoclaim(
                    OUTBOX_KEY,
                    GROUP,
                    consumer,
                    min_idle_time=min_idle_ms,
                    start_id="0-0",
                    count=count,
                ),
            )
        except redis.ResponseError as exc:
            self._group_lost(exc)
            return []
        return _entries(answer[1])

    def _group_lost(self, exc: redis.ResponseError) -> None:
        """Make the consumer group again when Redis no longer has it, else raise `exc`.

        A failover onto a replica that had not yet received the group, or a Redis restarted
        without its data, leaves the outbox without it; every read would fail until then. Made
        again from the stream's start, it hands out every entry still there (finished ones are
        deleted), and a ticket already delivered is not sent again."""
        if not str(exc).startswith("NOGROUP"):
            raise exc
        self.ensure_group()

    def drop_entry(self, entry_id: str) -> None:
        """Forget an outbox entry whose ticket is gone."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(OUTBOX_KEY, GROUP, entry_id)
            pipe.xdel(OUTBOX_KEY, entry_id)
            pipe.execute()

    def heartbeat(self, consumer: str, info: dict[str, Any], ttl: int) -> None:
        """Say this worker is alive, for `ttl` seconds."""
        self.redis.set(WORKER_KEY.format(consumer), json.dumps(info), ex=ttl)

    def retire(self, consumer: str) -> None:
        """A stopping worker drops its heartbeat, and leaves the group if it owes nothing."""
        self.redis.delete(WORKER_KEY.format(consumer))
        # Deleting a consumer drops its pending entries: keep it while it has any to reclaim.
        owed = self.redis.xpending_range(OUTBOX_KEY, GROUP, "-", "+", 1, consumername=consumer)
        if not owed:
            self.redis.xgroup_delconsumer(OUTBOX_KEY, GROUP, consumer)

    def outbox_length(self) -> int:
        """How many outbox entries wait or are being worked on."""
        return int(cast(int, self.redis.xlen(OUTBOX_KEY)))


def _entries(raw: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for entry_id, fields in raw:
        ticket = (fields or {}).get(b"ticket")
        out.append((_text(entry_id), _text(ticket) if ticket else ""))
    return out


def _assemble(doc: dict[str, Any], state: dict[bytes, bytes]) -> Ticket:
    fields = {k.decode(): v.decode() for k, v in state.items()}
    attempts = {k[9:]: int(v) for k, v in fields.items() if k.startswith("attempts:")}
    sinks = {k[5:]: v for k, v in fields.items() if k.startswith("sink:")}
    doc = {**doc, "status": fields.get("status", "new"), "attempts": attempts, "sinks": sinks}
    doc["last_error"] = fields.get("last_error")
    if "recording" in fields:
        doc["recording"] = json.loads(fields["recording"])
    if "transcript" in fields:
        doc["transcript"] = json.loads(fields["transcript"])
    return Ticket.from_dict(doc)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def day_of(at: datetime) -> str:
    """The UTC day of an instant as YYYYMMDD, as ticket ids spell it."""
    return ticket_prefix(at)[2:10]
