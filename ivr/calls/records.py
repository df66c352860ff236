"""Reading call records back: filtered listings, one call's timeline, a time range, retention.

Never a scan: a listing walks the smallest index that can answer it (or `ivr:calls`) newest
first, in chunks, and checks the other filters with ZMSCORE; the calls under way, which only
`ivr:calls` and `outcome:in_progress` hold, are merged in from their summaries. A page's cursor is
"<score>:<sid>" of its last row; equal scores are ordered by sid as Redis orders them, so the
next page continues strictly after that row even when many calls started at the same instant.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from typing import cast

import redis
from redis.cluster import RedisCluster

from ivr.calls.events import CallEvent
from ivr.calls.events import from_json as event_from_json
from ivr.calls.kpis import KpiFacts
from ivr.calls.summary import IN_PROGRESS, INDEXED, CallSummary, iso
from ivr.errors import BadQuery, StoreUnavailable
from ivr.store import (
    CALL_LOG_KEY,
    CALLS_KEY,
    INDEX_KEY,
    INDEXES_KEY,
    KPI_FACTS_KEY,
    LIVE_KEY,
    SUMMARY_KEY,
    WAITING_KEY,
    translated,
)

CHUNK = 200
BETWEEN_CHUNK = 1000
FACTS_CHUNK = 5000  # facts are short: a chunk is a few hundred kilobytes
MAX_LIMIT = 10_000

Scored = tuple[bytes, float]


def parse_cursor(cursor: str) -> tuple[float, bytes]:
    """The (score, sid) a cursor stands for; BadQuery when it is not one of ours."""
    score, sep, sid = cursor.partition(":")
    try:
        value = float(score)
    except ValueError:
        value = float("nan")
    if not sep or not sid or value != value:  # NaN never equals itself
        raise BadQuery(f"not a cursor of this listing: {cursor!r}")
    return value, sid.encode()


def make_cursor(score: float, sid: str) -> str:
    """The cursor of a row: its score written exactly, then its sid."""
    return f"{score!r}:{sid}"


class CallRecords:
    """Queries over the call records in Redis; every Redis failure is StoreUnavailable."""

    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection
        self.cluster = isinstance(cast(object, connection), RedisCluster)

    @translated
    def find(
        self,
        since: float | None = None,
        until: float | None = None,
        filters: Mapping[str, str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[CallSummary], str | None]:
        """Calls started within [since, until] matching every filter, newest first; and the
        cursor of the next page (None when this one is the last)."""
        wanted = dict(filters or {})
        unknown = sorted(set(wanted) - set(INDEXED))
        if unknown:
            raise BadQuery(f"unknown filter {', '.join(unknown)}: use {', '.join(INDEXED)}")
        if not 1 <= limit <= MAX_LIMIT:
            raise BadQuery(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        if since is not None and until is not None and until < since:
            raise BadQuery(f"until {iso(until)} is before since {iso(since)}")
        after = parse_cursor(cursor) if cursor else None
        top = until if until is not None else float("inf")
        bottom = since if since is not None else float("-inf")
        rows: list[CallSummary] = []
        for sid, score, summary in self._found(wanted, bottom, top, after):
            rows.append(summary)
            if len(rows) == limit:
                return rows, make_cursor(score, sid.decode())
        return rows, None

    @translated
    def show(self, sid: str) -> tuple[CallSummary, list[CallEvent]] | None:
        """A call's summary and its events oldest first, or None for a call not on record."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(SUMMARY_KEY.format(sid))
            pipe.lrange(CALL_LOG_KEY.format(sid), 0, -1)
            raw_summary, raw_log = pipe.execute()
        if not raw_summary:
            return None
        events = [event_from_json(e) for e in raw_log]
        # Stored order is the order of the writes; an event spooled while Redis was down is
        # written when it is replayed, after later ones. Each goes back to its own instant (a
        # stable sort: the events of one write share theirs and keep their order).
        events.sort(key=lambda event: event.at)
        return CallSummary.from_json(raw_summary), events

    def between(self, start: float, end: float) -> Iterator[CallSummary]:
        """Every call started in [start, end), oldest first, read in pipelined chunks."""
        try:
            for chunk in self._walk(CALLS_KEY, start, end, None, descending=False):
                chunk = [(sid, score) for sid, score in chunk if score < end]
                for summary in self._summaries([sid for sid, _ in chunk]):
                    if summary is not None:
                        yield summary
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc

    def kpi_facts(self, start: float, end: float) -> Iterator[KpiFacts]:
        """The KPI facts of every call started in [start, end), oldest first.

        The facts index holds the calls that have ended; the calls under way are read from
        their summaries. When the two do not add up to as many calls as `ivr:calls` holds over
        the span (calls recorded before the index existed, a Cluster write cut short between
        the keys, a call ending meanwhile), every call is derived from its summary: exact but
        slower.
        """
        try:
            high = f"({end!r}"
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.zcount(CALLS_KEY, start, high)
                pipe.zcount(KPI_FACTS_KEY, start, high)
                pipe.zrangebyscore(LIVE_KEY, start, high)
                calls, facts, live = pipe.execute()
            if calls != facts + len(live):
                for summary in self.between(start, end):
                    found = KpiFacts.of(summary)
                    if found is not None:
                        yield found
                return
            under_way = sorted(
                (f for s in self._summaries(live) if s and (f := KpiFacts.of(s))), key=_started
            )
            # A call that ended since the live set was read is among both: counted once.
            gone = {f.sid for f in under_way}
            ended = (f for f in self._facts(start, end) if f.sid not in gone)
            yield from heapq.merge(ended, under_way, key=_started)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc

    @translated
    def trim(self, before: float) -> int:
        """Forget calls started before `before` from every index; how many calls that was.

        Summaries and timelines expire by their TTL; only the cross-call sets need this. A call
        still under way is never trimmed, however old: it stays listed, counted live and waiting,
        and within reach of the call reconciler until it ends.
        """
        high = f"({before!r}"
        live = cast(
            list[tuple[bytes, float]],
            self.redis.zrangebyscore(LIVE_KEY, "-inf", high, withscores=True),
        )
        removed = cast(int, self.redis.zremrangebyscore(CALLS_KEY, "-inf", high))
        if live:
            # Put back at once: trimming around them would take a script or a scan per call.
            back = cast(int, self.redis.zadd(CALLS_KEY, dict(live)))
            removed = max(0, removed - back)  # one already missing comes back, uncounted
        self.redis.zremrangebyscore(KPI_FACTS_KEY, "-inf", high)
        # Only callers of calls under way wait; an entry of any other call is a leftover.
        waiting = cast(list[bytes], self.redis.zrangebyscore(WAITING_KEY, "-inf", high))
        under_way = {sid for sid, _ in live}
        gone = [sid for sid in waiting if sid not in under_way]
        if gone:
            self.redis.zrem(WAITING_KEY, *gone)
        cursor = 0
        while True:
            cursor, members = cast(
                tuple[int, list[bytes]], self.redis.sscan(INDEXES_KEY, cursor, count=500)
            )
            for raw in members:
                key = raw.decode() if isinstance(raw, bytes) else str(raw)
                if key == LIVE_KEY:
                    continue  # calls under way, which stay (see above)
                self.redis.zremrangebyscore(key, "-inf", high)
                if self.redis.zcard(key) == 0:
                    self.redis.srem(INDEXES_KEY, key)
                    # A call indexed between the two calls above must stay findable by trim.
                    if cast(int, self.redis.zcard(key)) > 0:
                        self.redis.sadd(INDEXES_KEY, key)
            if int(cursor) == 0:
                return removed

    # Helpers ---------------------------------------------------------------------------------

    def _found(
        self,
        wanted: Mapping[str, str],
        low: float,
        high: float,
        after: tuple[float, bytes] | None,
    ) -> Iterator[tuple[bytes, float, CallSummary]]:
        """(sid, score, summary) of the calls matching `wanted`, newest first.

        The indexes other than `ivr:calls` and `outcome:in_progress` hold only calls that have
        ended: a filter on them is answered from the index and, unless it asks for an ended
        outcome, from the calls under way whose summaries match it, the two merged in order.
        """
        outcome = wanted.get("outcome")
        others = {name: value for name, value in wanted.items() if name != "outcome"}
        if not others or (outcome and outcome != IN_PROGRESS):
            yield from self._by_indexes(wanted, low, high, after)
            return
        live = self._indexed(LIVE_KEY, [], low, high, after, others)
        if outcome == IN_PROGRESS:
            yield from live
            return
        ended = self._by_indexes(others, low, high, after)
        seen: set[bytes] = set()
        for row in heapq.merge(live, ended, key=_place, reverse=True):
            if row[0] not in seen:  # ended while read: in both
                seen.add(row[0])
                yield row

    def _by_indexes(
        self,
        wanted: Mapping[str, str],
        low: float,
        high: float,
        after: tuple[float, bytes] | None,
    ) -> Iterator[tuple[bytes, float, CallSummary]]:
        """The calls in the index of every filter of `wanted`, walking the smallest."""
        keys = [INDEX_KEY.format(name, value) for name, value in sorted(wanted.items())]
        walked, checked = self._smallest(keys)
        return self._indexed(walked, checked, low, high, after, wanted)

    def _indexed(
        self,
        walked: str,
        checked: list[str],
        low: float,
        high: float,
        after: tuple[float, bytes] | None,
        wanted: Mapping[str, str],
    ) -> Iterator[tuple[bytes, float, CallSummary]]:
        """The calls of index `walked` that are in every index of `checked` too and whose
        summaries match every filter of `wanted`, newest first.

        The summary has the last word: an index entry it does not bear out (left by a Cluster
        write cut short between keys, or by an older version that indexed calls under way) is
        passed over rather than listed under a value the call does not have.
        """
        for chunk in self._walk(walked, low, high, after, descending=True):
            matched = self._matching(chunk, checked)
            summaries = self._summaries([m for m, _ in matched])
            for (sid, score), summary in zip(matched, summaries, strict=True):
                if summary is None:  # expired by TTL before the index was trimmed
                    continue
                values = summary.index_values() if wanted else {}
                if all(values.get(name) == value for name, value in wanted.items()):
                    yield sid, score, summary

    def _smallest(self, keys: list[str]) -> tuple[str, list[str]]:
        if not keys:
            return CALLS_KEY, []
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zcard(key)
            sizes = [int(n) for n in pipe.execute()]
        smallest = min(range(len(keys)), key=lambda i: sizes[i])
        return keys[smallest], keys[:smallest] + keys[smallest + 1 :]

    def _walk(
        self,
        key: str,
        low: float,
        high: float,
        after: tuple[float, bytes] | None,
        descending: bool,
    ) -> Iterator[list[Scored]]:
        """Chunks of (sid, score) of `key` within [low, high], strictly after `after`.

        The edge is (score, how many members of that score were already read), so equal scores
        spanning chunks are neither repeated nor skipped.
        """
        edge = high if descending else low
        if after is not None:
            edge = min(edge, after[0]) if descending else max(edge, after[0])
        offset = 0
        while True:
            if descending:
                raw = self.redis.zrevrangebyscore(
                    key, edge, low, start=offset, num=CHUNK, withscores=True
                )
            else:
                raw = self.redis.zrangebyscore(
                    key, edge, high, start=offset, num=BETWEEN_CHUNK, withscores=True
                )
            chunk = cast(list[Scored], raw)
            if not chunk:
                return
            if after is not None:
                chunk = [(m, s) for m, s in chunk if not _seen(m, s, after, descending)]
            last = cast(list[Scored], raw)[-1][1]
            first = cast(list[Scored], raw)[0][1]
            if first == last == edge:
                offset += len(raw)
            else:
                offset = sum(1 for _, s in raw if s == last)
                edge = last
            if chunk:
                yield chunk

    def _facts(self, start: float, end: float) -> Iterator[KpiFacts]:
        """The facts index over [start, end) in chunks, without scores: each member carries its
        start time, which is its score (converting the scores would double the reading)."""
        low, skip = start, 0
        while True:
            raw = cast(
                list[bytes],
                self.redis.zrangebyscore(
                    KPI_FACTS_KEY, low, f"({end!r}", start=skip, num=FACTS_CHUNK
                ),
            )
            chunk = KpiFacts.from_members(raw)
            yield from chunk
            if len(chunk) < FACTS_CHUNK:
                return
            # The next chunk starts at the last start time, after the members of it read so far.
            last = chunk[-1].started_at
            same = sum(1 for facts in chunk if facts.started_at == last)
            skip = skip + same if last == low else same
            low = last

    def _matching(self, chunk: list[Scored], checked: list[str]) -> list[Scored]:
        if not checked:
            return chunk
        members = [sid for sid, _ in chunk]
        with self.redis.pipeline(transaction=False) as pipe:
            for key in checked:
                pipe.zmscore(key, cast(list[str], members))  # bytes are accepted too
            found = pipe.execute()
        return [
            row for i, row in enumerate(chunk) if all(scores[i] is not None for scores in found)
        ]

    def _summaries(self, sids: list[bytes]) -> list[CallSummary | None]:
        if not sids:
            return []
        keys = [SUMMARY_KEY.format(sid.decode()) for sid in sids]
        if self.cluster:
            # The summaries live in their calls' slots: a pipeline, split by node.
            with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(key)
                raw = pipe.execute()
        else:
            raw = cast(list[bytes | None], self.redis.mget(keys))  # one command, not a thousand
        return [CallSummary.from_json(r) if r else None for r in raw]


def _started(facts: KpiFacts) -> float:
    return facts.started_at


def _place(row: tuple[bytes, float, CallSummary]) -> tuple[float, bytes]:
    """Where a row stands in a listing: by score, then by sid, as Redis orders equal scores."""
    return row[1], row[0]


def _seen(member: bytes, score: float, after: tuple[float, bytes], descending: bool) -> bool:
    if descending:
        return score > after[0] or (score == after[0] and member >= after[1])
    return score < after[0] or (score == after[0] and member <= after[1])
