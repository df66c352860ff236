"""All Redis I/O of the product, over a connection that is always passed in.

Keys that must change together share a hash tag ({sid}) so that a Redis Cluster keeps them in
one slot and one script can update them atomically. The few cross-call keys (the event stream,
the call indexes, the KPI facts, who is waiting) are listed below; on a single Redis or Sentinel
they are written by the same script as the call, on a Cluster right after it.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import orjson
import redis
from redis.cluster import RedisCluster

from ivr import hostcalls, redis_url
from ivr.calls.events import CallEvent
from ivr.calls.events import from_json as event_from_json
from ivr.calls.events import to_json as event_json
from ivr.calls.kpis import KpiFacts
from ivr.calls.summary import IN_PROGRESS, INDEXED, CallSummary, fold
from ivr.errors import StoreUnavailable
from ivr.flows.state import CallState
from ivr.hostcalls import HostCalls
from ivr.settings import Settings
from routing.decide import Away

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

CALL_KEY = "ivr:call:{{{0}}}"  # hash: turn, state, reply:<turn>, input:<turn>
CALL_LOG_KEY = "ivr:call:{{{0}}}:log"  # list of the call's events (JSON), oldest first
SUMMARY_KEY = "ivr:call:{{{0}}}:summary"  # the call's summary (JSON), a fold of its events
SPOOLED_KEY = "ivr:call:{{{0}}}:spooled"  # set: ids of spooled events already replayed
EVENTS_KEY = "ivr:events"  # cross-call: stream of every call's events, an entry per write
CALLS_KEY = "ivr:calls"  # cross-call: sorted set of sids by start time (every call)
INDEX_KEY = "ivr:index:{0}:{1}"  # cross-call: sids by start time, per flow/queue/... value
LIVE_KEY = INDEX_KEY.format("outcome", IN_PROGRESS)  # the calls under way: see cross_call_writes
INDEXES_KEY = "ivr:indexes"  # cross-call: set of every index key, for the retention trim
WAITING_KEY = "ivr:waiting"  # cross-call: sids by the time their caller started waiting
KPI_FACTS_KEY = "ivr:kpi-facts"  # cross-call: each call's KpiFacts (a JSON array) by start time
FLOWSET_KEY = "ivr:flowset:{0}"  # hash: file name -> YAML text of one flow version
GOOD_FLOWSET_KEY = "ivr:flowset:good"  # string: the version last loaded from good files
PRESENCE_KEY = "ivr:presence"  # hash: agent id -> JSON {status, since}
PRESENCE_TOKEN_KEY = "ivr:presence:token"  # string: a new random token at every presence change
NO_PRESENCE_TOKEN = "-"  # the token of a presence never changed (or lost with its Redis)


def _token_changed(key: str, token: str) -> str:
    """Lua: whether the presence token at KEYS[`key`] is no longer ARGV[`token`]."""
    return f"(redis.call('GET', KEYS[{key}]) or '{NO_PRESENCE_TOKEN}') ~= ARGV[{token}]"


ROUND_ROBIN_KEY = "ivr:pool:{{{0}}}:next"  # string: the agent a round-robin pool rang first last
IDLE_KEY = "ivr:pool:{{{0}}}:idle"  # sorted set: agent id by the time it was last offered a call

FLOWSET_TTL_SECONDS = 7 * 24 * 3600
KEEP_REPLIES = 2  # replies kept per call besides the first: enough to answer a retried request
EVENTS_MAXLEN = 100_000  # the global stream is a recent feed; each call keeps its own timeline
RECORD_RETRIES = 8  # callbacks racing a webhook of the same call: fold again, a bounded number
RECENT_CALLS = 4096  # calls whose last write this process remembers, to skip reading them back
RECENT_SECONDS = 600.0  # ... for at most this long after that write
_NO_WRITE = ("", "", "", "", "", "", "")

# One call's write, atomic: state and reply (compare-and-set on the turn, skipped when ARGV[1] is
# '*'), its events and summary (compare-and-set on the number of events the summary was folded
# from), then the cross-call writes as (op, key index, a, b) quadruples: 'x' one XADD of the
# write's events as a JSON array built from their own arguments, so none crosses the wire twice;
# 'z' ZADD, 'n' ZADD NX, 'r' ZREM, and 'i' the ZADD of a call index, whose key is added to the
# registry of index keys (KEYS[ARGV[17]]) only when this made it, as the retention trim expects.
# ARGV: 1 expected turn, 2 expected events, 3 new turn ('' = state unchanged), 4 state,
# 5 reply field, 6 reply, 7 input field, 8 input, 9 turn to prune, 10 call TTL (with no new
# turn: '' = leave it, else the state's new TTL, as when the call ends), 11 record TTL,
# 12 summary, 13 number of events, 14 number of ops, 15 spooled id, 16 stream length, 17 index
# registry key index, 18 the presence token the turn was planned with ('' = none), 19 the key
# index of that token; events; ops.
# Returns 1 written, 0 turn moved on, -1 events added meanwhile, 2 spooled event already in,
# -2 agents' presence changed since the turn was planned.
_RECORD = (
    """
if ARGV[1] ~= '*' then
  local current = redis.call('HGET', KEYS[1], 'turn')
  if current == false then current = '' end
  if current ~= ARGV[1] then return 0 end
end
if ARGV[18] ~= '' and """
    + _token_changed("tonumber(ARGV[19])", "18")
    + """ then return -2 end
if ARGV[15] ~= '' and redis.call('SISMEMBER', KEYS[4], ARGV[15]) == 1 then return 2 end
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[2]) then return -1 end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'turn', ARGV[3], 'state', ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
  if ARGV[9] ~= '' then redis.call('HDEL', KEYS[1], 'reply:' .. ARGV[9], 'input:' .. ARGV[9]) end
  redis.call('EXPIRE', KEYS[1], ARGV[10])
elseif ARGV[10] ~= '' then
  redis.call('EXPIRE', KEYS[1], ARGV[10])
end
local n = tonumber(ARGV[13])
if n > 0 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 20, 19 + n))
  redis.call('EXPIRE', KEYS[2], ARGV[11])
end
if ARGV[12] ~= '' then redis.call('SET', KEYS[3], ARGV[12], 'EX', ARGV[11]) end
if ARGV[15] ~= '' then
  redis.call('SADD', KEYS[4], ARGV[15])
  redis.call('EXPIRE', KEYS[4], ARGV[11])
end
local i = 20 + n
for _ = 1, tonumber(ARGV[14]) do
  local op, key, a, b = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3]
  if op == 'x' then
    local batch = '[' .. table.concat({unpack(ARGV, 20, 19 + n)}, ',') .. ']'
    redis.call('XADD', key, 'MAXLEN', '~', ARGV[16], '*', 'sid', a, 'events', batch)
  elseif op == 'i' then
    if redis.call('ZADD', key, a, b) == 1 and redis.call('ZCARD', key) == 1 then
      redis.call('SADD', KEYS[tonumber(ARGV[17])], key)
    end
  elseif op == 'z' then redis.call('ZADD', key, a, b)
  elseif op == 'n' then redis.call('ZADD', key, 'NX', a, b)
  elseif op == 'r' then redis.call('ZREM', key, b)
  end
  i = i + 4
end
return 1
"""
)

# Order agents by the time each was last offered a call (never = first), in file order on ties,
# and mark the first as offered now, in one step so that concurrent calls pick different agents.
# With KEYS[2], only if that presence token is still ARGV[2] (else nothing, and false).
# ARGV: 1 now, 2 the presence token planned with ('' = none), then the agent ids.
_CLAIM_IDLE = (
    "if ARGV[2] ~= '' and "
    + _token_changed("2", "2")
    + """ then return false end
local scored = {}
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  scored[#scored + 1] = {ARGV[i], tonumber(score) or 0, i}
end
table.sort(scored, function(a, b)
  if a[2] ~= b[2] then return a[2] < b[2] end
  return a[3] < b[3]
end)
redis.call('ZADD', KEYS[1], ARGV[1], scored[1][1])
local ordered = {}
for i, entry in ipairs(scored) do ordered[i] = entry[1] end
return ordered
"""
)

# A round-robin pool's turn: the first agent after the one the pool's last call started with
# (in file order, around the roster ARGV[3..] of ARGV[2] ids) who is among the agents that can
# take this call (the ARGV after the roster), kept as the new start. Going by agent, not by a
# count of the agents in, keeps the turn fair when agents go away and come back. Returns ''
# when none can, and -1, taking no turn, if the presence token KEYS[2] is no longer ARGV[1].
_NEXT_TURN = (
    "if ARGV[1] ~= '' and "
    + _token_changed("2", "1")
    + """ then return -1 end
local n = tonumber(ARGV[2])
local can = {}
for i = 3 + n, #ARGV do can[ARGV[i]] = true end
local last = redis.call('GET', KEYS[1])
local from = 0
for i = 1, n do
  if ARGV[2 + i] == last then from = i end
end
for step = 1, n do
  local agent = ARGV[2 + (from + step - 1) % n + 1]
  if can[agent] then
    redis.call('SET', KEYS[1], agent)
    return agent
  end
end
return ''
"""
)


class PresenceChanged(Exception):
    """A route was planned on agents' presence that has changed since: plan it again."""


class ClosedMeanwhile(Exception):
    """The call's final status was recorded while a turn was played: play it again."""


def connect(settings: Settings) -> redis.Redis:
    """A client for `settings.redis_url` with bounded timeouts, so a dead Redis fails fast."""
    if not settings.redis_url:
        raise StoreUnavailable("no Redis URL: start the embedded server or set REDIS_URL")
    return redis_url.client(settings.redis_url, settings.redis_timeout)


def now() -> float:
    """The current time as a Unix timestamp; the one clock read of the edge."""
    return time.time()


def translated(method: F) -> F:
    """Redis failures of a Store method surface as StoreUnavailable."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
            # A Cluster client that cannot reach a node says so with the latter, no RedisError.
            raise StoreUnavailable(f"Redis: {exc}") from exc

    return cast(F, wrapper)


@dataclass(frozen=True)
class Loaded:
    """A call as read before a turn: its state, its summary so far and how many events that is."""

    state: CallState | None
    summary: CallSummary
    events: int


Op = tuple[str, str, Any, Any]


class RecentCalls:
    """What this process (and, under `ivr serve`, any worker of this host) last wrote of each
    recent call, so that its next webhook need not read it back from Redis.

    An entry is only ever a guess: every write it feeds is checked by the script's
    compare-and-set on the turn and on the number of events, so an entry made stale by
    another host (or worker) costs one failed write and a read, never a wrong answer.
    """

    def __init__(
        self,
        size: int = RECENT_CALLS,
        seconds: float = RECENT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        host: HostCalls | None = None,
    ) -> None:
        self.size = size
        self.seconds = seconds
        self.clock = clock
        self.host = host
        self._entries: OrderedDict[str, tuple[float, Loaded]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sid: str) -> Loaded | None:
        """The call as this process (or another worker of the host) last wrote it, if recent."""
        with self._lock:
            entry = self._entries.get(sid)
            if entry is not None and self.clock() - entry[0] > self.seconds:
                del self._entries[sid]
                entry = None
        shared = self.host.get(sid) if self.host is not None else None
        if shared is None or (entry is not None and entry[0] >= shared[0]):
            return entry[1] if entry is not None else None
        # Another worker wrote the call after this one did, or this one never did.
        _, state, summary, events = shared
        return Loaded(CallState.from_json(state), CallSummary.from_json(summary), events)

    def put(self, sid: str, loaded: Loaded, state_json: str = "", summary_json: str = "") -> None:
        """Remember the call as just written (its JSON too, when at hand, for the host's table);
        the oldest entry goes when full."""
        at = self.clock()
        with self._lock:
            self._entries[sid] = (at, loaded)
            self._entries.move_to_end(sid)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        if self.host is not None and loaded.state is not None:
            state = state_json or loaded.state.to_json()
            summary = summary_json or loaded.summary.to_json()
            self.host.put(sid, at, state.encode(), summary.encode(), loaded.events)

    def drop(self, sid: str) -> None:
        """Forget a call (its write failed, or it ended)."""
        with self._lock:
            self._entries.pop(sid, None)
        if self.host is not None:
            self.host.drop(sid)


class Store:
    """The product's state in Redis; every Redis failure surfaces as StoreUnavailable."""

    def __init__(
        self,
        connection: redis.Redis,
        call_ttl: int = 24 * 3600,
        record_ttl: int = 90 * 24 * 3600,
    ) -> None:
        self.redis = connection
        self.call_ttl = call_ttl
        self.record_ttl = record_ttl
        self.cluster = isinstance(connection, RedisCluster)
        self.recent = RecentCalls(host=hostcalls.shared())
        self._presence: tuple[Away, str] | None = None
        self._record = connection.register_script(_RECORD)
        self._claim_idle = connection.register_script(_CLAIM_IDLE)
        self._next_turn = connection.register_script(_NEXT_TURN)
        self._direct = None if self.cluster else redis_url.ThreadConnections(connection)
        # On a Cluster, where a call's cross-call writes follow its own script: keeps those that
        # failed (the call's summary before the write, and its events if the stream entry did
        # not land) for `replay_cross_call`. Without it, such a failure fails the write.
        self.keep_cross_call: Callable[[str, CallSummary, list[str]], None] | None = None

    def _run(self, script: Any, keys: list[Any], args: list[Any]) -> Any:
        """A script of the webhook path, on this thread's own connection where there is one.

        On a Cluster, a node without the script gets it with the keys' own EVAL (which keeps
        it there too): redis-py's own fallback loads it on every master, so that one master
        stalled failed every write until each node had the script."""
        if self._direct is not None:
            return self._direct.evalsha(script, keys, args)
        try:
            return self.redis.evalsha(script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return self.redis.eval(script.script, len(keys), *keys, *args)

    def _read(self, *commands: tuple[Any, ...]) -> list[Any]:
        """A webhook's reads of one call's keys, in one round trip, on this thread's own
        connection where there is one."""
        if self._direct is not None:
            return self._direct.read(*commands)
        with self.redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            return pipe.execute()

    # Calls -------------------------------------------------------------------------------

    @translated
    def load_call(self, sid: str) -> CallState | None:
        """The call's state, or None for a call never seen (or long expired)."""
        raw = cast(bytes | None, self.redis.hget(CALL_KEY.format(sid), "state"))
        return CallState.from_json(raw) if raw else None

    @translated
    def load_turn(self, sid: str, turn: int | None = None) -> Loaded:
        """The call's state with its summary so far, in one round trip; none when this process
        wrote the call last, at request `turn`, a moment ago."""
        if turn is not None:
            recent = self.recent.get(sid)
            if recent is not None and recent.state is not None and recent.state.turn == turn:
                return recent
        raw_state, raw_summary, length = self._read(
            ("HGET", CALL_KEY.format(sid), "state"),
            ("GET", SUMMARY_KEY.format(sid)),
            ("LLEN", CALL_LOG_KEY.format(sid)),
        )
        state = CallState.from_json(raw_state) if raw_state else None
        summary = CallSummary.from_json(raw_summary) if raw_summary else CallSummary(sid)
        return Loaded(state, summary, int(length))

    @translated
    def reply(self, sid: str, turn: int) -> tuple[str | None, str | None]:
        """The answer given to request `turn` of a call, and that request's input."""
        raw_reply, raw_input = cast(
            list[bytes | None],
            self.redis.hmget(CALL_KEY.format(sid), [f"reply:{turn}", f"input:{turn}"]),
        )
        return _text(raw_reply), _text(raw_input)

    @translated
    def commit(
        self,
        state: CallState,
        expected_turn: int | None,
        answered_turn: int,
        reply: str,
        request_input: str,
        events: Sequence[CallEvent] = (),
        before: Loaded | None = None,
        presence: str | None = None,
    ) -> CallSummary | None:
        """Store the call's new state, the reply to request `answered_turn` and the turn's
        events, atomically; the call's summary now.

        Fails (None) when the stored turn is not `expected_turn` (None: no call stored),
        meaning another request for the same call got there first. Events that callbacks of
        the same call recorded meanwhile are folded in and the write tried again, unless one
        of them closed the call (ClosedMeanwhile: the turn is to be played again). With
        `presence` (the token of `away_snapshot` a route was planned with), raises
        PresenceChanged, writing nothing, when an agent's presence changed since.
        """
        loaded = before or Loaded(None, CallSummary(state.sid), 0)
        expected = "" if expected_turn is None else str(expected_turn)
        prune = answered_turn - KEEP_REPLIES
        write = (
            str(state.turn),
            state.to_json(),
            f"reply:{answered_turn}",
            reply,
            f"input:{answered_turn}",
            request_input,
            str(prune) if prune >= 1 else "",  # the first answer is kept for the call's life
        )
        for _ in range(RECORD_RETRIES):
            done, after, summary_json = self._write(
                state.sid, expected, write, events, loaded, presence=presence
            )
            if done == -2:
                raise self._presence_changed(f"call {state.sid}: the route's plan")
            if done == 1:
                written = Loaded(state, after, loaded.events + len(events))
                self.recent.put(state.sid, written, write[1], summary_json)
                return after
            if done != -1:
                self.recent.drop(state.sid)
                return None
            was_closed = loaded.summary.closed
            loaded = self._reload(state.sid)
            if loaded.summary.closed and not was_closed and expected_turn is not None:
                # The turn was played for a caller still on the line, who is gone now.
                self.recent.drop(state.sid)
                raise ClosedMeanwhile(f"call {state.sid} ended while its turn was played")
        self.recent.drop(state.sid)
        raise StoreUnavailable(f"call {state.sid}: events kept changing while writing")

    @translated
    def record(
        self,
        sid: str,
        events: Sequence[CallEvent],
        spooled_id: str = "",
        then: Callable[[CallSummary], Sequence[CallEvent]] | None = None,
    ) -> CallSummary:
        """Add events to a call's record outside its turns (callbacks); the new summary.

        `then` may add events that depend on the summary these make (the call's end and its
        outcome), in the same write. With `spooled_id`, an event replayed from the disk spool
        is recorded once only.
        """
        return self._record_events(sid, events, spooled_id, then)

    def _record_events(
        self,
        sid: str,
        events: Sequence[CallEvent],
        spooled_id: str,
        then: Callable[[CallSummary], Sequence[CallEvent]] | None,
        call_ttl: int | None = None,
    ) -> CallSummary:
        # The first try trusts what this process wrote last, if recent; the script checks it.
        loaded = self.recent.get(sid)
        expire = "" if call_ttl is None else str(call_ttl)
        for _ in range(RECORD_RETRIES):
            if loaded is None:
                loaded = self._reload(sid)
            written = list(events)
            if then is not None:
                written += then(fold(loaded.summary, written))
            done, after, summary_json = self._write(
                sid, "*", _NO_WRITE, written, loaded, spooled_id, expire
            )
            if done == 2:
                return loaded.summary
            if done == 1:
                if call_ttl is None and loaded.state is not None:
                    now_loaded = Loaded(loaded.state, after, loaded.events + len(written))
                    self.recent.put(sid, now_loaded, summary_json=summary_json)
                else:
                    self.recent.drop(sid)
                return after
            self.recent.drop(sid)
            loaded = None
        raise StoreUnavailable(f"call {sid}: events kept changing while recording")

    def _reload(self, sid: str) -> Loaded:
        raw_summary, length = self._read(
            ("GET", SUMMARY_KEY.format(sid)), ("LLEN", CALL_LOG_KEY.format(sid))
        )
        summary = CallSummary.from_json(raw_summary) if raw_summary else CallSummary(sid)
        return Loaded(None, summary, int(length))

    def _write(
        self,
        sid: str,
        expected_turn: str,
        write: tuple[str, ...],
        events: Sequence[CallEvent],
        loaded: Loaded,
        spooled_id: str = "",
        expire: str = "",
        presence: str | None = None,
    ) -> tuple[int, CallSummary, str]:
        """One try of the record script; whether it wrote, the summary now and its JSON (''
        when the write added no events)."""
        after = fold(loaded.summary, events)
        encoded = [event_json(e) for e in events]
        keys = [CALL_KEY.format(sid), CALL_LOG_KEY.format(sid), SUMMARY_KEY.format(sid)]
        keys.append(SPOOLED_KEY.format(sid))
        ops = cross_call_writes(loaded.summary, after, encoded)
        inline = [] if self.cluster else ops
        summary_json = after.to_json() if events else ""
        args: list[Any] = [
            expected_turn,
            loaded.events,
            *write,
            self.call_ttl if write[0] else expire,
            self.record_ttl,
            summary_json,
            len(encoded),
            len(inline),
            spooled_id,
            EVENTS_MAXLEN,
            len(keys) + 1 if inline else "",
            presence or "",
            len(keys) + 2 if presence else "",
            *encoded,
        ]
        # The index registry and the presence token come first of the cross-call keys (a
        # Cluster has neither in the script: presence is then read afresh for every route).
        slots: dict[str, int] = {INDEXES_KEY: len(keys) + 1} if inline or presence else {}
        if presence:
            slots[PRESENCE_TOKEN_KEY] = len(keys) + 2
        for op, key, a, b in inline:
            args += [op, slots.setdefault(key, len(keys) + len(slots) + 1), a, b]
        done = int(self._run(self._record, keys + list(slots), args))
        if done == 1 and self.cluster and ops:
            self._cross_call(sid, loaded.summary, ops, encoded)
        return done, after, summary_json

    def _cross_call(
        self, sid: str, before: CallSummary, ops: list[Op], encoded: Sequence[str]
    ) -> None:
        """A Cluster's cross-call writes, after the call's own script wrote the call. A node
        that fails them (stalled, failing over) does not fail the call, which is written: they
        are kept for a replay, with the events only if the stream entry did not land."""
        try:
            results = self._write_cross_call(ops, encoded)
            failed = [r for r in results if isinstance(r, Exception)]
            streamed = not encoded or not isinstance(results[0], Exception)  # the XADD is first
        except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
            failed, streamed = [exc], False
        if not failed:
            return
        if self.keep_cross_call is None:
            raise failed[0]
        log.warning("call %s: cross-call writes kept for a replay (%s)", sid, failed[0])
        self.keep_cross_call(sid, before, [] if streamed else list(encoded))

    @translated
    def replay_cross_call(
        self, sid: str, batch: str, before: CallSummary, encoded: Sequence[str]
    ) -> None:
        """Write cross-call writes kept by `keep_cross_call`, once per `batch`.

        The indexes, KPI facts and waiting line are brought from `before` to the call's summary
        as it is now, not as it was after the failed write: a later write of the call has
        already moved them on from there, and replaying its old values would undo that.
        """
        marker, done_key = f"x:{batch}", SPOOLED_KEY.format(sid)
        if self.redis.sismember(done_key, marker):
            return
        now = self.summary(sid)
        ops = cross_call_writes(before, now or before, encoded)
        if ops:
            failed = [r for r in self._write_cross_call(ops, encoded) if isinstance(r, Exception)]
            if failed:
                raise failed[0]
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(done_key, marker)
            pipe.expire(done_key, self.record_ttl)
            pipe.execute()

    def _write_cross_call(self, ops: list[Op], encoded: Sequence[str]) -> list[Any]:
        """The writes as one pipeline; each command's result, or its error, in order."""
        with self.redis.pipeline(transaction=False) as pipe:
            for op, key, a, b in ops:
                if op == "x":
                    batch = "[" + ",".join(encoded) + "]"
                    pipe.xadd(
                        key, {"sid": a, "events": batch}, maxlen=EVENTS_MAXLEN, approximate=True
                    )
                elif op == "r":
                    pipe.zrem(key, b)
                else:
                    pipe.zadd(key, {b: a}, nx=op == "n")
                    if op == "i":
                        pipe.sadd(INDEXES_KEY, key)
            return pipe.execute(raise_on_error=False)

    @translated
    def call_log(self, sid: str) -> list[dict[str, Any]]:
        """A call's events as stored (JSON objects), oldest first."""
        raw = cast(list[bytes], self.redis.lrange(CALL_LOG_KEY.format(sid), 0, -1))
        return [json.loads(entry) for entry in raw]

    @translated
    def events(self, sid: str) -> list[CallEvent]:
        """A call's events, oldest first."""
        raw = cast(list[bytes], self.redis.lrange(CALL_LOG_KEY.format(sid), 0, -1))
        return [event_from_json(entry) for entry in raw]

    @translated
    def summary(self, sid: str) -> CallSummary | None:
        """A call's summary, or None for a call not on record."""
        raw = cast(bytes | None, self.redis.get(SUMMARY_KEY.format(sid)))
        return CallSummary.from_json(raw) if raw else None

    @translated
    def end_call(
        self,
        sid: str,
        status: CallEvent,
        closing: Callable[[CallSummary], Sequence[CallEvent]],
        spooled_id: str = "",
    ) -> CallSummary:
        """Record Twilio's final status of a call, close its record, let its state expire."""
        ttl = min(self.call_ttl, 3600)
        return self._record_events(sid, [status], spooled_id, closing, call_ttl=ttl)

    @translated
    def waiting_count(self) -> int:
        """How many callers wait for an agent now, on every host."""
        return int(cast(int, self.redis.zcard(WAITING_KEY)))

    @translated
    def longest_wait_since(self) -> float | None:
        """When the caller waiting longest for an agent began to wait (None: nobody waits)."""
        first = cast(
            list[tuple[bytes, float]], self.redis.zrange(WAITING_KEY, 0, 0, withscores=True)
        )
        return float(first[0][1]) if first else None

    @translated
    def under_way_since(self, before: float, limit: int, skip: int = 0) -> list[tuple[str, float]]:
        """The calls under way that started before `before`, oldest first, with their start:
        at most `limit` of them, after the `skip` oldest."""
        found = cast(
            list[tuple[bytes, float]],
            self.redis.zrangebyscore(
                LIVE_KEY, "-inf", f"({before!r}", start=skip, num=limit, withscores=True
            ),
        )
        return [(sid.decode(), float(score)) for sid, score in found]

    @translated
    def forget_under_way(self, sid: str) -> None:
        """Take a call whose record is gone out of the live set and the waiting line."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(LIVE_KEY, sid)
            pipe.zrem(WAITING_KEY, sid)
            pipe.execute()

    @translated
    def last_event_at(self, sid: str) -> float | None:
        """When the newest event of a call's timeline happened (None: no timeline)."""
        raw = cast(bytes | None, self.redis.lindex(CALL_LOG_KEY.format(sid), -1))
        return event_from_json(raw).at if raw else None

    @translated
    def in_progress_count(self) -> int:
        """How many calls are under way now, on every host."""
        return int(cast(int, self.redis.zcard(LIVE_KEY)))

    # Flow versions -------------------------------------------------------------------------

    @translated
    def save_flowset(self, version: str, texts: Mapping[str, str]) -> None:
        """Keep the YAML of a flow version, so any worker can serve calls that started on it."""
        key = FLOWSET_KEY.format(version)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if texts:
                pipe.hset(key, mapping=dict(texts))
            pipe.expire(key, FLOWSET_TTL_SECONDS)
            pipe.execute()

    @translated
    def load_flowset(self, version: str) -> dict[str, str] | None:
        """The YAML of a flow version, if still kept."""
        raw = cast(dict[bytes, bytes], self.redis.hgetall(FLOWSET_KEY.format(version)))
        if not raw:
            return None
        return {k.decode(): v.decode() for k, v in raw.items()}

    @translated
    def mark_good_flowset(self, version: str) -> None:
        """Remember `version` as the last good one, keeping its YAML as long as the pointer."""
        self.redis.set(GOOD_FLOWSET_KEY, version)
        self.redis.expire(FLOWSET_KEY.format(version), FLOWSET_TTL_SECONDS)

    @translated
    def good_flowset_version(self) -> str | None:
        """The version last loaded from good files, if any was."""
        raw = cast(bytes | None, self.redis.get(GOOD_FLOWSET_KEY))
        return raw.decode() if raw else None

    # Agents ---------------------------------------------------------------------------------

    @translated
    def set_presence(self, agent_id: str, status: str, by: str = "") -> dict[str, Any]:
        """Mark an agent available or away; returns the record kept."""
        raw = cast(bytes | None, self.redis.hget(PRESENCE_KEY, agent_id))
        kept = _records({agent_id.encode(): raw}).get(agent_id) if raw else None
        if (kept or {"status": "available"}).get("status") == status:
            # Already so: `since` stays when it began, and routes need not be planned again.
            return kept or {"status": status, "since": None, "by": ""}
        record = {"status": status, "since": now(), "by": by}
        # A Cluster keeps the two keys in different slots: no transaction, and no snapshots.
        with self.redis.pipeline(transaction=not self.cluster) as pipe:
            pipe.hset(PRESENCE_KEY, agent_id, json.dumps(record))
            pipe.set(PRESENCE_TOKEN_KEY, uuid.uuid4().hex)
            pipe.execute()
        return record

    @translated
    def away_snapshot(self) -> tuple[Away, str | None]:
        """The agents away, and the token of that presence for `commit` to check (None on a
        Cluster, where it is read afresh every time).

        The snapshot is kept by this process until a commit finds the token changed: routes
        are then planned without reading presence, and never on a presence older than the
        one Redis holds when their turn is written.
        """
        if self.cluster:
            return Away(self.away()), None
        kept = self._presence
        if kept is not None:
            return kept
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(PRESENCE_TOKEN_KEY)
            pipe.hgetall(PRESENCE_KEY)
            token, raw = pipe.execute()
        kept = (Away(_away(_records(raw))), token.decode() if token else NO_PRESENCE_TOKEN)
        self._presence = kept
        return kept

    def _presence_changed(self, what: str) -> PresenceChanged:
        """Forget the snapshot `what` was planned on, which Redis found out of date."""
        self._presence = None
        return PresenceChanged(f"agents' presence changed before {what} was written")

    @translated
    def presence(self) -> dict[str, dict[str, Any]]:
        """Every presence record, by agent id (agents without one are available)."""
        return _records(cast(dict[bytes, bytes], self.redis.hgetall(PRESENCE_KEY)))

    def away(self) -> set[str]:
        """The ids of agents marked away."""
        return _away(self.presence())

    @translated
    def next_round_robin(
        self,
        pool: str,
        roster: Sequence[str],
        agent_ids: Sequence[str],
        presence: str | None = None,
    ) -> str | None:
        """The agent a round-robin pool's call starts with: the first of `agent_ids` after the
        one its last call started with, around the pool's `roster` (every agent id, in file
        order). With `presence` (a token of `away_snapshot`), PresenceChanged and no turn taken
        if the agents' presence changed since: a call planned again takes one turn all the same."""
        keys = [ROUND_ROBIN_KEY.format(pool)] + ([PRESENCE_TOKEN_KEY] if presence else [])
        args = [presence or "", len(roster), *roster, *agent_ids]
        agent = self._run(self._next_turn, keys, args)
        if agent == -1:
            raise self._presence_changed(f"the turn of pool {pool}")
        agent = agent.decode() if isinstance(agent, bytes) else str(agent)
        return agent or None

    @translated
    def claim_longest_idle(
        self, pool: str, agent_ids: list[str], at: float, presence: str | None = None
    ) -> list[str]:
        """Agents ordered by how long since each was last offered a call; the first is claimed.
        With `presence`, PresenceChanged and nobody claimed if that changed since."""
        if not agent_ids:
            return []
        keys = [IDLE_KEY.format(pool)] + ([PRESENCE_TOKEN_KEY] if presence else [])
        ordered = self._run(self._claim_idle, keys, [at, presence or "", *agent_ids])
        if ordered is None:
            raise self._presence_changed(f"the longest-idle claim of pool {pool}")
        return [a.decode() if isinstance(a, bytes) else str(a) for a in ordered]

    @translated
    def took_call(self, pool: str, agent: str, at: float) -> None:
        """An agent of a longest-idle pool took a call at `at`: idle since then (never earlier
        than a claim already recorded)."""
        self.redis.zadd(IDLE_KEY.format(pool), {agent: at}, gt=True)

    @translated
    def ping(self) -> bool:
        """Whether Redis answers."""
        return bool(self.redis.ping())


def cross_call_writes(before: CallSummary, after: CallSummary, encoded: Sequence[str]) -> list[Op]:
    """The writes outside the call's own keys: the global stream, the indexes, the KPI facts,
    who waits.

    A call under way is indexed only under `outcome:in_progress` (the calls live now); its other
    indexes and its KPI facts are written once, when it ends. Its flow, language, queue and pool
    are settled one webhook at a time, so indexing them on the way would write each index, and
    the facts, several times per call on the webhooks callers wait for.
    """
    sid = after.sid
    # One stream entry per write: its events, oldest first, as a JSON array joined where it is
    # written (by the script from its arguments, or by the Cluster pipeline).
    ops: list[Op] = [("x", EVENTS_KEY, sid, "")] if encoded else []
    if after.started_at is None:
        return ops
    score = after.started_at
    if before.started_at is None:
        ops.append(("n", CALLS_KEY, score, sid))
    old, new = _indexed_under(before), _indexed_under(after)
    for name in INDEXED:
        was, value = old.get(name), new.get(name)
        if was == value:
            continue
        if was:
            ops.append(("r", INDEX_KEY.format(name, was), 0, sid))
        if value:
            ops.append(("i", INDEX_KEY.format(name, value), score, sid))
    # The facts member changes with the outcome, the route or the answer: the old one goes.
    facts_before, facts = KpiFacts.finished(before), KpiFacts.finished(after)
    if before.started_at is not None and not before.finished and after.finished:
        # Earlier versions kept facts for calls under way too: the last such member goes.
        facts_before = KpiFacts.of(before)
    if facts_before != facts:
        if facts_before is not None:
            ops.append(("r", KPI_FACTS_KEY, 0, facts_before.to_member()))
        if facts is not None:
            ops.append(("z", KPI_FACTS_KEY, score, facts.to_member()))
    if after.waiting and not before.waiting:
        ops.append(("z", WAITING_KEY, after.waiting_since, sid))
    elif before.waiting and not after.waiting:
        ops.append(("r", WAITING_KEY, 0, sid))
    return ops


def _indexed_under(summary: CallSummary) -> dict[str, str]:
    """The index values a call is held under: all of them once it has ended, else its outcome."""
    if summary.started_at is None:
        return {}
    if not summary.finished:
        return {"outcome": IN_PROGRESS}
    return summary.index_values()


def _records(raw: Mapping[bytes, bytes]) -> dict[str, dict[str, Any]]:
    """Presence records as read from Redis, by agent id."""
    return {k.decode(): orjson.loads(v) for k, v in raw.items()}


def _away(records: Mapping[str, Mapping[str, Any]]) -> set[str]:
    return {agent for agent, record in records.items() if record["status"] == "away"}


def _text(raw: bytes | None) -> str | None:
    return raw.decode() if raw is not None else None
