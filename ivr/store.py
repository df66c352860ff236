"""All Redis I/O of the product, over a connection that is always passed in.

Keys that must change together share a hash tag ({sid}) so that a Redis Cluster keeps them in
one slot and one script can update them atomically.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, cast

import redis

from ivr import redis_url
from ivr.flows.state import CallState
from ivr.settings import Settings

CALL_KEY = "ivr:call:{{{0}}}"  # hash: turn, state, reply:<turn>, input:<turn>
CALL_LOG_KEY = "ivr:call:{{{0}}}:log"  # list of JSON timeline entries
CALLS_KEY = "ivr:calls"  # sorted set: sid by start time
FLOWSET_KEY = "ivr:flowset:{0}"  # hash: file name -> YAML text of one flow version
PRESENCE_KEY = "ivr:presence"  # hash: agent id -> JSON {status, since}
ROUND_ROBIN_KEY = "ivr:pool:{{{0}}}:next"  # counter: the next agent of a round-robin pool
IDLE_KEY = "ivr:pool:{{{0}}}:idle"  # sorted set: agent id by the time it was last offered a call

LOG_TTL_SECONDS = 90 * 24 * 3600
FLOWSET_TTL_SECONDS = 7 * 24 * 3600
KEEP_REPLIES = 2  # replies kept per call: enough to answer a retry of the previous request

# Compare-and-set of a call: write only if nobody moved the call on since it was read.
_COMMIT = """
local current = redis.call('HGET', KEYS[1], 'turn')
if current == false then current = '' end
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'turn', ARGV[2], 'state', ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if ARGV[8] ~= '' then redis.call('HDEL', KEYS[1], 'reply:' .. ARGV[8], 'input:' .. ARGV[8]) end
redis.call('EXPIRE', KEYS[1], ARGV[9])
if #ARGV > 10 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 11))
  redis.call('EXPIRE', KEYS[2], ARGV[10])
end
return 1
"""


# Order agents by the time each was last offered a call (never = first), in file order on ties,
# and mark the first as offered now, in one step so that concurrent calls pick different agents.
_CLAIM_IDLE = """
local scored = {}
for i = 2, #ARGV do
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


def connect(settings: Settings) -> redis.Redis:
    """A client for `settings.redis_url` with bounded timeouts, so a dead Redis fails fast."""
    if not settings.redis_url:
        raise ValueError("no Redis URL: start the embedded server or set REDIS_URL")
    return redis_url.client(settings.redis_url, settings.redis_timeout)


def now() -> float:
    """The current time as a Unix timestamp; the one clock read of the edge."""
    return time.time()


class Store:
    """The product's state in Redis."""

    def __init__(self, connection: redis.Redis, call_ttl: int = 24 * 3600) -> None:
        self.redis = connection
        self.call_ttl = call_ttl
        self._commit = connection.register_script(_COMMIT)
        self._claim_idle = connection.register_script(_CLAIM_IDLE)

    # Calls -------------------------------------------------------------------------------

    def load_call(self, sid: str) -> CallState | None:
        """The call's state, or None for a call never seen (or long expired)."""
        raw = cast(bytes | None, self.redis.hget(CALL_KEY.format(sid), "state"))
        return CallState.from_json(raw) if raw else None

    def reply(self, sid: str, turn: int) -> tuple[str | None, str | None]:
        """The answer given to request `turn` of a call, and that request's input."""
        raw_reply, raw_input = cast(
            list[bytes | None],
            self.redis.hmget(CALL_KEY.format(sid), [f"reply:{turn}", f"input:{turn}"]),
        )
        return _text(raw_reply), _text(raw_input)

    def commit(
        self,
        state: CallState,
        expected_turn: int | None,
        answered_turn: int,
        reply: str,
        request_input: str,
        log: Iterable[Mapping[str, Any]] = (),
    ) -> bool:
        """Store the call's new state and the reply to request `answered_turn`, atomically.

        Fails (False) when the stored turn is not `expected_turn` (None: no call stored),
        meaning another request for the same call got there first.
        """
        at = now()
        entries = [json.dumps({"at": at, **entry}, ensure_ascii=False) for entry in log]
        prune = answered_turn - KEEP_REPLIES
        keys = [CALL_KEY.format(state.sid), CALL_LOG_KEY.format(state.sid)]
        args: list[Any] = [
            "" if expected_turn is None else str(expected_turn),
            str(state.turn),
            state.to_json(),
            f"reply:{answered_turn}",
            reply,
            f"input:{answered_turn}",
            request_input,
            str(prune) if prune >= 0 else "",
            self.call_ttl,
            LOG_TTL_SECONDS,
            *entries,
        ]
        if expected_turn is not None:
            return bool(self._commit(keys=keys, args=args))
        # A new call: the call-slot script first, then the global index (NX keeps a retry's
        # first time). Two commands, not one pipeline: a Cluster keeps `ivr:calls` in another
        # slot and refuses EVALSHA inside a pipeline.
        done = self._commit(keys=keys, args=args)
        self.redis.zadd(CALLS_KEY, {state.sid: at}, nx=True)
        return bool(done)

    def append_log(self, sid: str, entries: Iterable[Mapping[str, Any]]) -> None:
        """Add entries to a call's timeline."""
        at = now()
        values = [json.dumps({"at": at, **entry}, ensure_ascii=False) for entry in entries]
        if not values:
            return
        key = CALL_LOG_KEY.format(sid)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, *values)
            pipe.expire(key, LOG_TTL_SECONDS)
            pipe.execute()

    def call_log(self, sid: str) -> list[dict[str, Any]]:
        """A call's timeline, oldest first."""
        raw = cast(list[bytes], self.redis.lrange(CALL_LOG_KEY.format(sid), 0, -1))
        return [json.loads(entry) for entry in raw]

    def end_call(self, sid: str, status: str, duration: int | None) -> None:
        """Record Twilio's final status of a call and let its state expire sooner."""
        self.append_log(sid, [{"kind": "status", "status": status, "duration": duration}])
        self.redis.expire(CALL_KEY.format(sid), min(self.call_ttl, 3600))

    # Flow versions -------------------------------------------------------------------------

    def save_flowset(self, version: str, texts: Mapping[str, str]) -> None:
        """Keep the YAML of a flow version, so any worker can serve calls that started on it."""
        key = FLOWSET_KEY.format(version)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if texts:
                pipe.hset(key, mapping=dict(texts))
            pipe.expire(key, FLOWSET_TTL_SECONDS)
            pipe.execute()

    def load_flowset(self, version: str) -> dict[str, str] | None:
        """The YAML of a flow version, if still kept."""
        raw = cast(dict[bytes, bytes], self.redis.hgetall(FLOWSET_KEY.format(version)))
        if not raw:
            return None
        return {k.decode(): v.decode() for k, v in raw.items()}

    # Agents ---------------------------------------------------------------------------------

    def set_presence(self, agent_id: str, status: str, by: str = "") -> dict[str, Any]:
        """Mark an agent available or away; returns the record kept."""
        record = {"status": status, "since": now(), "by": by}
        self.redis.hset(PRESENCE_KEY, agent_id, json.dumps(record))
        return record

    def presence(self) -> dict[str, dict[str, Any]]:
        """Every presence record, by agent id (agents without one are available)."""
        raw = cast(dict[bytes, bytes], self.redis.hgetall(PRESENCE_KEY))
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def away(self) -> set[str]:
        """The ids of agents marked away."""
        return {agent for agent, record in self.presence().items() if record["status"] == "away"}

    def next_round_robin(self, pool: str) -> int:
        """A ticket for a round-robin pool: consecutive calls get consecutive numbers."""
        return cast(int, self.redis.incr(ROUND_ROBIN_KEY.format(pool))) - 1

    def claim_longest_idle(self, pool: str, agent_ids: list[str]) -> list[str]:
        """Agents ordered by how long since each was last offered a call; the first is claimed."""
        if not agent_ids:
            return []
        ordered = self._claim_idle(keys=[IDLE_KEY.format(pool)], args=[now(), *agent_ids])
        return [a.decode() if isinstance(a, bytes) else str(a) for a in ordered]

    def ping(self) -> bool:
        """Whether Redis answers."""
        return bool(self.redis.ping())


def _text(raw: bytes | None) -> str | None:
    return raw.decode() if raw is not None else None
