"""Calls whose final status callback never came are closed: from Twilio's REST API (played by a
loopback server) when it can tell, else a day after they started, at their last event."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from flask import Flask

from ivr.calls.events import CallStarted, DialStarted, RouteDecided, TwilioStatus
from ivr.calls.housekeeping import RECONCILE_EVERY, RECONCILE_LOCK_KEY, Housekeeper
from ivr.calls.reconcile import ASK_AFTER, GIVE_UP_AFTER, Reconciler, TwilioCalls
from ivr.calls.records import CallRecords
from ivr.services import Services
from ivr.simulate import new_call_sid
from ivr.store import CALL_LOG_KEY, LIVE_KEY, SUMMARY_KEY, WAITING_KEY
from tests.calls.builders import T0
from tests.tickets.fakes import ACCOUNT_SID, AUTH_TOKEN, FakeServices, Reply

CALLS = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls"


@pytest.fixture
def twilio() -> Iterator[FakeServices]:
    with FakeServices() as fake:
        yield fake


def _services(app: Flask) -> Services:
    services = app.extensions["ivr"]
    assert isinstance(services, Services)
    return services


def _waiting_call(services: Services, start: float = T0) -> str:
    """A call that reached the route and rang a pool, then was heard of no more."""
    sid = new_call_sid()
    services.store.record(sid, [CallStarted(start, caller="+84901111222", flow="support")])
    services.store.record(sid, [RouteDecided(start + 10, queue="billing", chosen="hanoi")])
    services.store.record(sid, [DialStarted(start + 11, pool="hanoi", agents=("lan",))])
    return sid


def _call_resource(sid: str, status: str, ended: float | None, duration: str | None) -> Reply:
    body = {"sid": sid, "status": status, "duration": duration}
    body["end_time"] = format_datetime(datetime.fromtimestamp(ended, UTC)) if ended else None
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _closed_late(app: Flask, how: str) -> float:
    """What /metrics says of calls closed without their final callback, this way."""
    body = app.test_client().get("/metrics").get_data(as_text=True)
    prefix = f'ivr_calls_closed_late_total{{how="{how}"}} '
    return next((float(line[len(prefix) :]) for line in body.splitlines()
                 if line.startswith(prefix)), 0.0)  # fmt: skip


def _reconciler(services: Services, twilio: FakeServices | None) -> Reconciler:
    client = TwilioCalls(twilio.base, ACCOUNT_SID, AUTH_TOKEN) if twilio else None
    return Reconciler(services.store, services.voice, client)


def test_a_call_without_its_final_callback_is_closed_with_twilios_status(
    app: Flask, connection: redis.Redis, twilio: FakeServices
) -> None:
    services = _services(app)
    sid = _waiting_call(services)
    assert connection.zscore(WAITING_KEY, sid) is not None
    twilio.script("GET", f"{CALLS}/{sid}.json", _call_resource(sid, "completed", T0 + 95, "95"))
    done = _reconciler(services, twilio).run(T0 + ASK_AFTER + 1)
    assert (done.looked_at, done.closed_by_twilio, done.closed_unreported) == (1, 1, 0)
    summary = services.store.summary(sid)
    assert summary is not None and summary.outcome == "abandoned"
    assert summary.ended_at == T0 + 95 and summary.duration == 95
    kinds = [(e["kind"], e.get("fetched")) for e in services.store.call_log(sid)][-2:]
    assert kinds == [("status", True), ("call_ended", None)]
    assert connection.zscore(LIVE_KEY, sid) is None and connection.zscore(WAITING_KEY, sid) is None
    found, _ = CallRecords(connection).find(filters={"outcome": "abandoned"})
    assert [r.sid for r in found] == [sid]
    (asked,) = twilio.seen("GET", f"{CALLS}/{sid}.json")
    assert asked.headers["Authorization"].startswith("Basic ")
    # Without an end time, Twilio's duration says when it ended.
    other = _waiting_call(services, T0 + 60)
    twilio.script("GET", f"{CALLS}/{other}.json", _call_resource(other, "canceled", None, "40"))
    assert _reconciler(services, twilio).run(T0 + 60 + ASK_AFTER + 1).closed_by_twilio == 1
    closed = services.store.summary(other)
    assert closed is not None and closed.ended_at == T0 + 100 and closed.outcome == "abandoned"
    # Closed once: a second round neither asks again nor adds events.
    events = len(services.store.call_log(sid))
    assert _reconciler(services, twilio).run(T0 + ASK_AFTER + 600).looked_at == 0
    assert len(services.store.call_log(sid)) == events


def test_calls_twilio_says_are_live_or_does_not_know_are_left_until_a_day_has_passed(
    app: Flask, connection: redis.Redis, twilio: FakeServices
) -> None:
    services = _services(app)
    live, unknown, failing = (_waiting_call(services) for _ in range(3))
    twilio.script("GET", f"{CALLS}/{live}.json", _call_resource(live, "in-progress", None, None))
    twilio.script("GET", f"{CALLS}/{failing}.json", Reply(500, b"oops"))  # unknown: a 404
    done = _reconciler(services, twilio).run(T0 + 2 * ASK_AFTER)
    assert (done.looked_at, done.closed_by_twilio, done.closed_unreported) == (3, 0, 0)
    assert connection.zcard(LIVE_KEY) == 3
    # A day on, whatever Twilio says or fails to say, the record is closed at its last event.
    for sid in (live, failing):
        twilio.script("GET", f"{CALLS}/{sid}.json", Reply(503, b"down"))
    done = _reconciler(services, twilio).run(T0 + GIVE_UP_AFTER + 5)
    assert (done.looked_at, done.closed_unreported) == (3, 3)
    for sid in (live, unknown, failing):
        summary = services.store.summary(sid)
        assert summary is not None and summary.outcome == "abandoned"
        assert summary.ended_at == T0 + 11 and summary.duration == 11
        missing = services.store.call_log(sid)[-2]
        assert missing["kind"] == "status_missing" and missing["waited"] == GIVE_UP_AFTER - 6
    assert connection.zcard(LIVE_KEY) == 0


def test_without_rest_credentials_only_the_day_closes_a_call(
    app: Flask, connection: redis.Redis
) -> None:
    services = _services(app)
    assert TwilioCalls.from_settings(services.settings) is None  # no TWILIO_ACCOUNT_SID
    recent, old = _waiting_call(services, T0 + 3600), _waiting_call(services)
    before = _closed_late(app, "unreported")
    done = _reconciler(services, None).run(T0 + GIVE_UP_AFTER + 60)
    assert (done.looked_at, done.closed_unreported) == (1, 1)
    assert _closed_late(app, "unreported") == before + 1  # for operators to see and alert on
    assert connection.zrange(LIVE_KEY, 0, -1) == [recent.encode()]
    summary = services.store.summary(old)
    assert summary is not None and summary.outcome == "abandoned"


def test_calls_that_ended_or_are_young_are_never_asked(
    app: Flask, connection: redis.Redis, twilio: FakeServices
) -> None:
    services = _services(app)
    young = _waiting_call(services, T0 + 10)
    assert _reconciler(services, twilio).run(T0 + ASK_AFTER).looked_at == 0
    assert twilio.seen("GET", CALLS) == []
    assert connection.zrange(LIVE_KEY, 0, -1) == [young.encode()]


def test_housekeeping_closes_them_on_one_host_at_a_time(
    app: Flask, connection: redis.Redis
) -> None:
    services = _services(app)
    sid = _waiting_call(services)
    instant = T0 + GIVE_UP_AFTER + 1
    first, second = Housekeeper(services, lambda: instant), Housekeeper(services, lambda: instant)
    assert first.reconcile(instant) == 1
    assert second.reconcile(instant) == 0  # the other host holds the round
    summary = services.store.summary(sid)
    assert summary is not None and summary.ended_at is not None


def test_each_housekeeping_round_closes_them_when_their_time_has_come(
    app: Flask, connection: redis.Redis
) -> None:
    services = _services(app)
    clock = [T0 + GIVE_UP_AFTER + 1]
    keeper = Housekeeper(services, lambda: clock[0])
    first = _waiting_call(services)
    keeper.run_once()
    assert connection.zrange(LIVE_KEY, 0, -1) == []
    second = _waiting_call(services, T0 + 30)
    connection.delete(RECONCILE_LOCK_KEY)  # as if another host ran the next round
    clock[0] += RECONCILE_EVERY / 2
    keeper.run_once()  # not yet this process's time
    assert connection.zrange(LIVE_KEY, 0, -1) == [second.encode()]
    clock[0] += RECONCILE_EVERY / 2
    connection.delete(RECONCILE_LOCK_KEY)
    keeper.run_once()
    assert connection.zrange(LIVE_KEY, 0, -1) == []
    summary = services.store.summary(first)
    assert summary is not None and summary.outcome == "abandoned"


def test_a_spool_that_cannot_be_read_keeps_no_call_from_being_closed(
    app: Flask, connection: redis.Redis
) -> None:
    services = _services(app)
    sid = _waiting_call(services)
    spool = services.settings.data_dir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    (spool / "events.jsonl").mkdir()  # a directory where the file should be: open() fails
    Housekeeper(services, lambda: T0 + GIVE_UP_AFTER + 1).run_once()
    summary = services.store.summary(sid)
    assert summary is not None and summary.ended_at is not None  # closed all the same


def test_a_slow_or_broken_answer_from_twilio_leaves_the_call_for_the_next_round(
    app: Flask, connection: redis.Redis, twilio: FakeServices
) -> None:
    services = _services(app)
    slow, dropped, garbage = (_waiting_call(services) for _ in range(3))
    twilio.script("GET", f"{CALLS}/{slow}.json", Reply(200, b"{}", delay=1.0))
    complete = _call_resource(dropped, "completed", T0 + 50, "50")
    complete.drop_mid_body = True
    twilio.script("GET", f"{CALLS}/{dropped}.json", complete)
    twilio.script("GET", f"{CALLS}/{garbage}.json", Reply(200, b"<html>maintenance</html>"))
    client = TwilioCalls(twilio.base, ACCOUNT_SID, AUTH_TOKEN, timeout=(1.0, 0.3))
    done = Reconciler(services.store, services.voice, client).run(T0 + ASK_AFTER + 1)
    assert (done.looked_at, done.closed_by_twilio, done.closed_unreported) == (3, 0, 0)
    assert connection.zcard(LIVE_KEY) == 3
    # Answered well next time, the call is closed then.
    twilio.script(
        "GET", f"{CALLS}/{dropped}.json", _call_resource(dropped, "completed", T0 + 50, "50")
    )
    done = Reconciler(services.store, services.voice, client).run(T0 + ASK_AFTER + 301)
    assert done.closed_by_twilio == 1 and connection.zscore(LIVE_KEY, dropped) is None


def test_calls_still_live_do_not_keep_the_ones_after_them_from_being_looked_at(
    app: Flask, connection: redis.Redis, twilio: FakeServices
) -> None:
    services = _services(app)
    long_calls = [_waiting_call(services, T0 + i) for i in range(5)]
    for sid in long_calls:
        twilio.script("GET", f"{CALLS}/{sid}.json", _call_resource(sid, "in-progress", None, None))
    forgotten = _waiting_call(services, T0 + 10)
    gone = _call_resource(forgotten, "completed", T0 + 70, "60")
    twilio.script("GET", f"{CALLS}/{forgotten}.json", gone)
    done = _reconciler(services, twilio).run(T0 + ASK_AFTER + 20, most=10, page=2)
    assert (done.looked_at, done.closed_by_twilio) == (6, 1)
    assert connection.zscore(LIVE_KEY, forgotten) is None
    assert connection.zcard(LIVE_KEY) == len(long_calls)
    # And a round looks at no more than it may.
    for sid in long_calls:
        twilio.script("GET", f"{CALLS}/{sid}.json", _call_resource(sid, "in-progress", None, None))
    assert _reconciler(services, twilio).run(T0 + ASK_AFTER + 30, most=3, page=2).looked_at == 3


def test_a_round_stops_when_its_time_is_up(
    app: Flask, connection: redis.Redis, twilio: FakeServices
) -> None:
    services = _services(app)
    calls = [_waiting_call(services, T0 + i) for i in range(3)]
    for sid in calls:
        slow = _call_resource(sid, "completed", T0 + 60, "60")
        slow.delay = 0.3
        twilio.script("GET", f"{CALLS}/{sid}.json", slow)
    done = _reconciler(services, twilio).run(T0 + ASK_AFTER + 10, seconds=0.2)
    assert (done.looked_at, done.closed_by_twilio) == (1, 1)  # the first, then time was up
    assert connection.zcard(LIVE_KEY) == 2


@pytest.mark.parametrize("retry_after", ["30", None])
def test_a_rate_limited_answer_stops_the_questions_for_the_round(
    app: Flask, connection: redis.Redis, twilio: FakeServices, retry_after: str | None
) -> None:
    services = _services(app)
    calls = [_waiting_call(services, T0 + i) for i in range(3)]
    headers = {"Retry-After": retry_after} if retry_after else {}
    twilio.script("GET", f"{CALLS}/{calls[0]}.json", Reply(429, b"Too Many Requests", headers))
    for sid in calls:
        twilio.script("GET", f"{CALLS}/{sid}.json", _call_resource(sid, "completed", T0 + 60, "60"))
    done = _reconciler(services, twilio).run(T0 + ASK_AFTER + 10)
    # Asking about the others would only be refused too, and keep the limit on.
    assert len(twilio.seen("GET", CALLS)) == 1
    assert (done.looked_at, done.closed_by_twilio) == (3, 0)
    assert connection.zcard(LIVE_KEY) == 3
    done = _reconciler(services, twilio).run(T0 + ASK_AFTER + 310)  # the next round asks again
    assert done.closed_by_twilio == 3 and connection.zcard(LIVE_KEY) == 0


@pytest.mark.parametrize("duration", ["-40", "1" * 25, "forty"])
def test_a_garbage_duration_from_twilio_does_not_stall_the_rounds(
    app: Flask, connection: redis.Redis, twilio: FakeServices, duration: str
) -> None:
    services = _services(app)
    odd, after = _waiting_call(services, T0), _waiting_call(services, T0 + 1)
    body = {
        "sid": odd,
        "status": "completed",
        "duration": int(duration) if duration[-1].isdigit() else duration,
    }
    resource = Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})
    twilio.script("GET", f"{CALLS}/{odd}.json", resource)
    twilio.script("GET", f"{CALLS}/{after}.json", _call_resource(after, "completed", T0 + 61, "60"))
    done = _reconciler(services, twilio).run(T0 + ASK_AFTER + 10)
    assert done.closed_by_twilio == 2 and connection.zcard(LIVE_KEY) == 0
    summary = services.store.summary(odd)
    assert summary is not None and summary.outcome == "abandoned"
    # Twilio's length unreadable, the call ends when it was found over.
    assert summary.ended_at == T0 + ASK_AFTER + 10 and summary.duration == ASK_AFTER + 10


def test_a_call_whose_record_expired_before_it_was_closed_leaves_the_live_set(
    app: Flask, connection: redis.Redis
) -> None:
    services = _services(app)
    sid = _waiting_call(services)
    # IVR_RETENTION_DAYS=1: the record's TTL runs out as the day to wait for its status does.
    connection.delete(SUMMARY_KEY.format(sid), CALL_LOG_KEY.format(sid))
    done = _reconciler(services, None).run(T0 + GIVE_UP_AFTER + 60)
    assert (done.looked_at, done.closed_unreported) == (1, 1)
    assert connection.zscore(LIVE_KEY, sid) is None
    assert connection.zscore(WAITING_KEY, sid) is None
    assert services.store.in_progress_count() == 0
    assert _reconciler(services, None).run(T0 + GIVE_UP_AFTER + 400).looked_at == 0


def test_a_closed_call_still_listed_live_is_looked_at_once_a_round(
    app: Flask, connection: redis.Redis, twilio: FakeServices
) -> None:
    services = _services(app)
    sid = _waiting_call(services)
    services.voice.close(sid, TwilioStatus(T0 + 60, status="completed", duration=60))
    connection.zadd(LIVE_KEY, {sid: T0})  # as a Cluster index write waiting for its replay
    twilio.script("GET", f"{CALLS}/{sid}.json", _call_resource(sid, "completed", T0 + 60, "60"))
    done = _reconciler(services, twilio).run(T0 + ASK_AFTER + 10)
    assert done.looked_at == 1
    assert len(twilio.seen("GET", CALLS)) == 1


def test_credentials_twilio_refuses_are_tried_once_a_round(
    app: Flask, connection: redis.Redis, twilio: FakeServices
) -> None:
    services = _services(app)
    calls = [_waiting_call(services, T0 + i) for i in range(3)]
    for sid in calls:
        twilio.script("GET", f"{CALLS}/{sid}.json", Reply(401, b'{"code": 20003}'))
    done = _reconciler(services, twilio).run(T0 + ASK_AFTER + 10)
    assert len(twilio.seen("GET", CALLS)) == 1  # not once per call: all would be refused
    assert (done.looked_at, done.closed_by_twilio) == (3, 0)
    assert connection.zcard(LIVE_KEY) == 3


class _Trickle(BaseHTTPRequestHandler):
    """Answers a call resource a byte at a time, for at most a few seconds."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "5000")
        self.end_headers()
        stop = time.monotonic() + 4.0
        try:
            while time.monotonic() < stop:
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass  # the client gave up: as it should
        self.close_connection = True


def test_an_answer_trickling_in_is_given_up_on_in_bounded_time(
    app: Flask, connection: redis.Redis
) -> None:
    services = _services(app)
    sid = _waiting_call(services)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        client = TwilioCalls(base, ACCOUNT_SID, AUTH_TOKEN, timeout=(1.0, 0.5), total=1.0)
        began = time.monotonic()
        done = Reconciler(services.store, services.voice, client).run(T0 + ASK_AFTER + 1)
        # Each byte comes well within the read timeout: only a limit on the whole answer ends
        # it, or the housekeeping thread (and the spool replay it runs) would wait as long.
        assert time.monotonic() - began < 2.5
        assert (done.looked_at, done.closed_by_twilio) == (1, 0)
        assert connection.zscore(LIVE_KEY, sid) is not None
    finally:
        server.shutdown()
        server.server_close()


def test_a_compressed_answer_is_read(
    app: Flask, connection: redis.Redis, twilio: FakeServices
) -> None:
    services = _services(app)
    sid = _waiting_call(services)
    resource = {"sid": sid, "status": "completed", "duration": "95", "end_time": None}
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    body = gzip.compress(json.dumps(resource).encode())
    twilio.script("GET", f"{CALLS}/{sid}.json", Reply(200, body, headers))
    assert _reconciler(services, twilio).run(T0 + ASK_AFTER + 1).closed_by_twilio == 1
    summary = services.store.summary(sid)
    assert summary is not None and summary.duration == 95
