"""Faults under load against the real `ivr serve`: Redis stopped or slow, a broken flow file,
workers killed, a graceful reload. Twilio must never see a 5xx or dead air, and nothing is lost."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ivr.commands.serve import gunicorn_options
from ivr.settings import Settings
from tests.faults.load import Answer, CallRecord, Figures, Load
from tests.server.conftest import (
    RELOAD_INTERVAL,
    Server,
    copy_sample_flows,
    process_alive,
    running_server,
    shared_redis_url,
    worker_pids,
)

pytestmark = [pytest.mark.faults, pytest.mark.server]

KEEPALIVE = gunicorn_options("127.0.0.1", 0, 1)["keepalive"]

CALLERS = 8
# A webhook waits for a stalled Redis one command timeout (0.5 s), then answers without it; the
# slack covers the request's own work and the load's, on a shared machine.
STALLED_ANSWER = Settings().redis_timeout + 0.35
REPLAY_WAIT = 20.0  # the housekeeping thread replays the spool every 5 s
embedded_only = pytest.mark.skipif(
    shared_redis_url() is not None, reason="stops or stalls its Redis: only with an embedded one"
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A fresh server per scenario: one fault must not leak into the next."""
    with running_server(tmp_path, copy_sample_flows(tmp_path / "call_flows")) as running:
        yield running


def lost_events(server: Server, figures: Figures) -> list[str]:
    """What the call records miss, one line per problem."""
    problems = []
    for call, kinds in timelines(server, figures):
        expected = ["call_started"]
        expected += ["status"] if call.status_sent else []
        expected += ["voicemail"] if call.recording_sid else []
        expected += ["fallback"] if call.fell_back else []
        missing = [kind for kind in expected if kind not in kinds]
        if missing:
            problems.append(f"{call.sid}: no {', '.join(missing)}: {kinds}")
    return problems


def doubled_events(server: Server, figures: Figures) -> list[str]:
    """Facts sent once but on record more than once (starts, status callbacks, voicemails)."""
    doubled = []
    for call, kinds in timelines(server, figures):
        for kind in ("call_started", "status", "voicemail", "call_ended"):
            if kinds.count(kind) > 1:
                doubled.append(f"{call.sid}: {kind} x{kinds.count(kind)}: {kinds}")
    return doubled


def timelines(server: Server, figures: Figures) -> list[tuple[CallRecord, list[str]]]:
    """Each call the load placed with the kinds of its events, oldest first."""
    store = server.store()
    return [(call, [e["kind"] for e in store.call_log(call.sid)]) for call in figures.calls]


def settled(server: Server, figures: Figures, timeout: float = REPLAY_WAIT) -> list[str]:
    """The problems left once the spool had time to be replayed (none, when all is well)."""
    deadline = time.monotonic() + timeout
    problems = lost_events(server, figures)
    while problems and time.monotonic() < deadline:
        time.sleep(0.5)
        problems = lost_events(server, figures)
    return problems


def finish(
    server: Server, figures: Figures, name: str, report: list[str], timeout: float = REPLAY_WAIT
) -> tuple[list[str], list[str]]:
    """Wait for the records to settle, report the figures; what is lost and what is doubled."""
    lost = settled(server, figures, timeout)
    doubled = doubled_events(server, figures)
    report.append(figures.line(name) + f" lost={len(lost)} doubled={len(doubled)}")
    return lost, doubled


def assert_safe(figures: Figures, connection_errors_allowed: bool = False) -> None:
    """No 5xx, every answer safe TwiML, every call answered at all."""
    assert figures.requests > 0 and figures.calls
    assert figures.server_errors == 0, figures.by_status
    assert figures.bad_answers == [], figures.bad_answers[:5]
    if not connection_errors_allowed:
        assert figures.connection_errors == 0, figures.connection_failures[:3]
    unfinished = [call.sid for call in figures.calls if not call.completed]
    assert unfinished == [], f"{len(unfinished)} calls did not reach a hang-up"


def ready(server: Server) -> bool:
    """/readyz on a fresh connection: a kept-alive one may belong to a worker being replaced."""
    try:
        return requests.get(server.base + "/readyz", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def wait_workers(server: Server, count: int, exclude: set[int], timeout: float = 20.0) -> list[int]:
    """Block until `count` workers other than `exclude` run and the server answers /readyz."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = [pid for pid in worker_pids(server) if pid not in exclude]
        if len(fresh) >= count and ready(server):
            return fresh
        time.sleep(0.1)
    pytest.fail(f"workers not back after {timeout:.0f} s: {worker_pids(server)}\n{server.log()}")


@pytest.fixture
def roomy_server(tmp_path: Path) -> Iterator[Server]:
    """A fresh server with a thread per caller in each worker: while Redis stalls every thread
    waits up to a command timeout, and a request that found all of its worker's threads waiting
    would wait for one first. That is capacity; the stall tests measure the webhook itself."""
    flows = copy_sample_flows(tmp_path / "call_flows")
    with running_server(tmp_path, flows, threads=CALLERS) as running:
        yield running


def stalled_answers(figures: Figures, stalls: list[tuple[float, float]]) -> list[Answer]:
    """The answers that were awaited while Redis stalled."""
    return [a for a in figures.answers if any(a.overlaps(*stall) for stall in stalls)]


def latency_line(answers: list[Answer]) -> str:
    """The answers' count, median and slowest, for the figures."""
    times = sorted(a.seconds for a in answers)
    if not times:
        return "  no answer during the stall"
    return (
        f"  during the stall: {len(times)} answers, median {times[len(times) // 2]:.3f} s, "
        f"slowest {times[-1]:.3f} s (bound {STALLED_ANSWER:.2f} s)"
    )


def assert_answered_in_time(answers: list[Answer]) -> None:
    """A stalled Redis costs a webhook one command timeout, then it answers without Redis."""
    assert answers, "no request was answered during the stall"
    late = [(a.path, round(a.seconds, 3)) for a in answers if a.seconds > STALLED_ANSWER]
    assert late == [], late[:5]


@embedded_only
def test_redis_stopped_mid_call_then_back(roomy_server: Server, report: list[str]) -> None:
    server = roomy_server
    assert server.embedded_pid is not None
    with Load(server.base, CALLERS, calls=400, seconds=60) as load:
        load.wait_for_calls(CALLERS * 2)
        start = time.monotonic()
        os.kill(server.embedded_pid, signal.SIGSTOP)
        try:
            time.sleep(3)
        finally:
            os.kill(server.embedded_pid, signal.SIGCONT)
        stalls = [(start, time.monotonic())]
    figures = load.figures
    lost, _doubled = finish(server, figures, "redis stopped 3 s", report)
    during = stalled_answers(figures, stalls)
    report.append(latency_line(during))
    assert_safe(figures)
    assert figures.fallbacks > 0, "Redis stopped, yet no caller heard the fallback"
    assert_answered_in_time(during)
    assert lost == [], lost[:3]
    assert server.redis().ping()


@embedded_only
def test_redis_slow(roomy_server: Server, report: list[str]) -> None:
    server = roomy_server
    sleeper = server.redis()
    stalls: list[tuple[float, float]] = []
    with Load(server.base, CALLERS, calls=400, seconds=60) as load:
        load.wait_for_calls(CALLERS * 2)
        for _ in range(3):  # each blocks Redis for a second: twice the client timeout
            start = time.monotonic()
            sleeper.execute_command("DEBUG", "SLEEP", "1")
            stalls.append((start, time.monotonic()))
            time.sleep(0.3)
    figures = load.figures
    lost, _doubled = finish(server, figures, "redis slow (DEBUG SLEEP 1 x3)", report)
    during = stalled_answers(figures, stalls)
    report.append(latency_line(during))
    assert_safe(figures)
    assert figures.fallbacks > 0, "Redis stalled past the timeout, yet nobody heard the fallback"
    assert_answered_in_time(during)
    assert lost == [], lost[:3]


def test_flow_file_broken_while_calls_run(server: Server, report: list[str]) -> None:
    support = server.flows_dir / "support.yaml"
    version = server.get("/readyz").json()["flows_version"]
    with Load(server.base, CALLERS, calls=400, seconds=60) as load:
        load.wait_for_calls(CALLERS * 2)
        broken = support.with_suffix(".tmp")
        broken.write_text(support.read_text() + "\n  broken: [unclosed\n", encoding="utf-8")
        os.replace(broken, support)
        time.sleep(RELOAD_INTERVAL * 3)
        answers = [server.get("/readyz").json() for _ in range(server.workers * 3)]
    figures = load.figures
    lost, doubled = finish(server, figures, "flow file broken", report, timeout=5)
    assert all(a["flows_version"] == version and a["errors"] for a in answers), answers
    assert_safe(figures)
    assert figures.fallbacks == 0, "the last good version should have answered every call"
    assert lost == [], lost[:3]
    assert doubled == [], doubled[:3]


def test_worker_sigkill_under_load(server: Server, report: list[str]) -> None:
    before = wait_workers(server, server.workers, set())  # /readyz answers before all booted
    with Load(server.base, CALLERS, calls=400, seconds=60) as load:
        load.wait_for_calls(CALLERS * 2)
        os.kill(before[0], signal.SIGKILL)
        wait_workers(server, 1, set(before))
        load.wait_for_calls(CALLERS * 6)
    figures = load.figures
    lost, _doubled = finish(server, figures, "worker SIGKILL", report)
    assert not process_alive(before[0])
    survivors = set(before[1:])
    assert survivors <= set(worker_pids(server)), server.log()  # the others were left alone
    wait_workers(server, server.workers, {before[0]})
    # A request on the killed worker gets no answer at all; Twilio retries those, and so does
    # the load, so every call still completes.
    assert_safe(figures, connection_errors_allowed=True)
    assert lost == [], lost[:3]


def reload_under_load(server: Server, reloads: int) -> Figures:
    """`kill -HUP` of the master `reloads` times while calls run; what the load saw."""
    assert server.process is not None
    wait_workers(server, server.workers, set())  # /readyz answers before all have booted
    with Load(server.base, CALLERS, calls=400, seconds=60) as load:
        load.wait_for_calls(CALLERS * 2)
        for done in range(reloads):
            before = set(worker_pids(server))
            os.kill(server.process.pid, signal.SIGHUP)
            wait_workers(server, server.workers, before)
            load.wait_for_calls(CALLERS * (4 + 2 * done))
            wait_gone(server, before, KEEPALIVE + 3)
    return load.figures


def wait_gone(server: Server, old: set[int], timeout: float) -> None:
    """Block until the workers `old` have left; an old worker drains its kept-alive connections
    first, so it may stay for up to the keep-alive time after the new ones serve."""
    deadline = time.monotonic() + timeout
    while not set(worker_pids(server)).isdisjoint(old):
        if time.monotonic() > deadline:
            pytest.fail(f"old workers still there after {timeout:.0f} s: {worker_pids(server)}")
        time.sleep(0.1)


def test_graceful_reload_under_load(server: Server, report: list[str]) -> None:
    figures = reload_under_load(server, reloads=1)
    lost, doubled = finish(server, figures, "master SIGHUP", report, timeout=5)
    assert_safe(figures)  # not a request unanswered: the old workers drain their connections
    assert lost == [], lost[:3]
    assert doubled == [], doubled[:3]
    assert server.redis().ping()  # the workers that left did not take the embedded Redis along


def test_graceful_reload_drops_no_request(server: Server, report: list[str]) -> None:
    figures = reload_under_load(server, reloads=3)
    report.append(figures.line("master SIGHUP x3") + f" {figures.connection_failures[:2]}")
    assert_safe(figures)


@embedded_only
def test_writes_that_time_out_are_recorded_once(server: Server, report: list[str]) -> None:
    sleeper = server.redis()
    with Load(server.base, CALLERS, calls=1000, seconds=40) as load:
        load.wait_for_calls(CALLERS)
        for _ in range(20):  # pauses just past the 0.5 s client timeout, often
            sleeper.execute_command("DEBUG", "SLEEP", "0.6")
            time.sleep(0.25)
    figures = load.figures
    assert_safe(figures)
    lost, doubled = finish(server, figures, "redis pauses past the client timeout", report)
    assert lost == []
    assert doubled == [], doubled[:3]
