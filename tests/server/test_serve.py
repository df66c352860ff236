"""`ivr serve` end to end: real gunicorn workers, real Redis, signed requests over loopback HTTP."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ivr.gthread import REQUESTS_PER_CONNECTION
from ivr.phrases import DEFAULT_SPEECH_LANGUAGES, phrase
from ivr.store import CALLS_KEY
from ivr.voice.security import SignatureChecker
from tests.conftest import AUTH_TOKEN, SUPPORT_NUMBER, parse_twiml
from tests.server.conftest import (
    RELOAD_INTERVAL,
    HttpCaller,
    Server,
    action_of,
    copy_sample_flows,
    process_alive,
    running_server,
    says,
    shared_redis_url,
    verbs,
)

pytestmark = pytest.mark.server

GREETING = "Thank you for calling customer support."
RECORDING = {
    "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE" + "1" * 32,
    "RecordingSid": "RE" + "1" * 32,
    "RecordingDuration": "7",
}


@dataclass(frozen=True)
class Language:
    """What a caller who chose a language presses and hears in the sample flow."""

    key: str
    menu: str  # a fragment of the main menu
    billing: str  # the whole billing announcement
    hours: str  # a fragment of the opening hours
    voicemail: str  # a fragment of the voicemail prompt
    goodbye: str  # the whole goodbye


LANGUAGES = {
    "en-US": Language(
        "1",
        "For billing and payments, press 1",
        "Connecting you to our billing team.",
        "open twenty-four hours a day",
        "Please leave your name, your phone number",
        "Thank you for calling. Goodbye.",
    ),
    "vi-VN": Language(
        "2",
        "hỗ trợ về hóa đơn và thanh toán, xin nhấn phím 1",
        "Xin vui lòng chờ trong giây lát, chúng tôi đang chuyển máy đến bộ phận thanh toán.",
        "làm việc 24 giờ mỗi ngày",
        "vui lòng để lại họ tên, số điện thoại",
        "Cảm ơn quý khách đã gọi. Xin chào và hẹn gặp lại.",
    ),
    "ar-XA": Language(
        "3",
        "للفواتير والمدفوعات، اضغط 1",
        "يرجى الانتظار، جارٍ تحويلك إلى قسم الفواتير.",
        "متاحة على مدار الساعة",
        "يرجى ترك اسمك ورقم هاتفك",
        "شكرًا لاتصالك. مع السلامة.",
    ),
}


def all_in(language: str, heard: list[tuple[str, str]]) -> bool:
    return bool(heard) and all(spoken_in == language for spoken_in, _ in heard)


def test_health_and_readiness(server: Server) -> None:
    assert server.get("/healthz").status_code == 200
    ready = server.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True and body["redis"] is True
    assert body["flows"] == ["agents", "hours", "support"] and body["errors"] == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_sample_flow_walked_in_each_language(server: Server, language: str) -> None:
    said = LANGUAGES[language]
    caller = server.caller()

    root = caller.twiml("/voice/incoming")
    assert says(root)[0] == ("en-US", GREETING)
    offered = " ".join(text for _, text in says(root.find("Gather")))  # type: ignore[arg-type]
    assert "Tiếng Việt" in offered and "للعربية" in offered

    root = caller.follow(root, Digits=said.key)
    gather = root.find("Gather")
    # Listened to in the recogniser's code for the language (ar-XA is heard as ar-EG).
    heard_as = DEFAULT_SPEECH_LANGUAGES.get(language, language)
    assert gather is not None and gather.attrib["language"] == heard_as
    assert all_in(language, says(root)) and said.menu in says(root)[0][1]

    root = caller.follow(root, Digits="1")
    assert says(root)[0] == (language, said.billing)
    all_busy = phrase("all_busy", language)[0]
    dials = 0
    while root.find("Dial") is not None:  # whichever sample pools are on shift now
        assert all_in(language, says(root)) or verbs(root) == ["Dial"]
        dials += 1
        root = caller.follow(root, DialCallStatus="no-answer")
    held = root.find("Enqueue") is not None
    if held:  # agents on shift but busy: the caller waits in line, then leaves for voicemail
        assert says(root) == [(language, all_busy)]
        root = _wait_in_line_then_leave(caller, root, language)
    assert verbs(root)[-1] == "Record" and all_in(language, says(root))
    texts = [text for _, text in says(root)]
    assert said.voicemail in texts[-1]
    assert held or texts[-2] == all_busy

    root = caller.follow(root, **RECORDING)
    assert says(root) == [(language, phrase("message_saved", language)[0])]
    assert verbs(root) == ["Say", "Hangup"]
    assert caller.status().status_code == 200

    log = server.store().call_log(caller.sid)
    assert log[0] | {"at": 0} == {
        "v": 1,
        "at": 0,
        "kind": "call_started",
        "caller": "+84901111222",
        "called": SUPPORT_NUMBER,
        "from_country": "VN",
        "flow": "support",
        "version": log[0]["version"],
        "language": "en-US",
    }
    steps = [e["step"] for e in log if e["kind"] == "step"]
    assert steps == ["welcome", "choose_language", "main", "billing", "billing_queue", "voicemail"]
    inputs = [(e["step"], e["digits"], e["chosen"]) for e in log if e["kind"] == "input"]
    assert inputs == [("choose_language", said.key, said.key), ("main", "1", "1")]
    others = [e["kind"] for e in log if e["kind"] not in ("step", "input", "dial")]
    waited = ["hold_joined", "hold_left"] if held else []
    results = ["dial_result"] * dials
    assert others == [
        "call_started",
        "language",
        "route",
        *results,
        *waited,
        "voicemail",
        "hangup",
        "ticket",
        "status",
        "call_ended",
    ]
    route = next(e for e in log if e["kind"] == "route")
    assert route["queue"] == "billing"
    for result in (e for e in log if e["kind"] == "dial_result"):
        assert result["status"] == "no-answer" and result["pool"] in route["pools"]
    voicemail = next(e for e in log if e["kind"] == "voicemail")
    assert voicemail["url"] == RECORDING["RecordingUrl"] and voicemail["seconds"] == 7
    assert log[-2]["status"] == "completed" and log[-1]["outcome"] == "voicemail"
    summary = server.store().summary(caller.sid)
    assert summary is not None and summary.outcome == "voicemail" and summary.queue == "billing"
    assert summary.ticket is not None and summary.ticket.startswith("T-")
    state = server.store().load_call(caller.sid)
    assert state is not None and state.language == language and state.ended


def _wait_in_line_then_leave(caller: HttpCaller, root: ET.Element, language: str) -> ET.Element:
    """Twilio's part in a hold line: the wait URL, the caller pressing the leave key, the end."""
    enqueue = root.find("Enqueue")
    assert enqueue is not None
    wait = caller.twiml(enqueue.attrib["waitUrl"], QueuePosition="1", AvgQueueTime="30")
    assert all_in(language, says(wait))
    left = caller.follow(wait, Digits="*")
    assert verbs(left) == ["Leave"]
    return caller.twiml(enqueue.attrib["action"], QueueResult="leave", QueueTime="20")


def _unsigned(caller: HttpCaller) -> requests.Response:
    return caller.send("/voice/incoming", caller.params, {})


def _wrong_token(caller: HttpCaller) -> requests.Response:
    signature = SignatureChecker("not-the-auth-token").sign(
        caller.base + "/voice/incoming", caller.params
    )
    return caller.send("/voice/incoming", caller.params, {"X-Twilio-Signature": signature})


def _garbage_signature(caller: HttpCaller) -> requests.Response:
    return caller.send("/voice/incoming", caller.params, {"X-Twilio-Signature": "AAAA" * 7})


def _tampered_parameter(caller: HttpCaller) -> requests.Response:
    signature = caller.checker.sign(caller.base + "/voice/incoming", caller.params)
    tampered = {**caller.params, "From": "+15550009999"}
    return caller.send("/voice/incoming", tampered, {"X-Twilio-Signature": signature})


def _added_parameter(caller: HttpCaller) -> requests.Response:
    path = "/voice/input?turn=1&lang=en-US"
    signature = caller.checker.sign(caller.base + path, caller.params)
    return caller.send(path, {**caller.params, "Digits": "1"}, {"X-Twilio-Signature": signature})


def _tampered_query(caller: HttpCaller) -> requests.Response:
    params = {**caller.params, "Digits": "1"}
    signature = caller.checker.sign(caller.base + "/voice/input?turn=1&lang=en-US", params)
    return caller.send("/voice/input?turn=2&lang=en-US", params, {"X-Twilio-Signature": signature})


def _signed_for_another_host(caller: HttpCaller) -> requests.Response:
    signature = caller.checker.sign("https://ivr.example.com/voice/incoming", caller.params)
    return caller.send("/voice/incoming", caller.params, {"X-Twilio-Signature": signature})


FORGERIES: dict[str, Callable[[HttpCaller], requests.Response]] = {
    "unsigned": _unsigned,
    "wrong token": _wrong_token,
    "garbage signature": _garbage_signature,
    "tampered parameter": _tampered_parameter,
    "added parameter": _added_parameter,
    "tampered query": _tampered_query,
    "signed for another host": _signed_for_another_host,
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_requests_are_refused_and_store_nothing(server: Server, forgery: str) -> None:
    caller = server.caller()
    response = FORGERIES[forgery](caller)
    assert response.status_code == 403
    db = server.redis()
    assert db.keys(f"*{caller.sid}*") == []
    assert db.zscore(CALLS_KEY, caller.sid) is None
    # The same request correctly signed goes through: the refusal was the signature's doing.
    assert caller.post("/voice/incoming").status_code == 200


def test_retried_action_answers_the_same_and_advances_once(server: Server) -> None:
    caller = server.caller()
    first = caller.post("/voice/incoming")
    action = action_of(parse_twiml(first.text))
    once = caller.post(action, Digits="2")
    again = caller.post(action, Digits="2")
    assert once.status_code == again.status_code == 200
    assert again.text == once.text
    assert caller.post("/voice/incoming").text == first.text
    state = server.store().load_call(caller.sid)
    assert state is not None and state.turn == 2 and state.language == "vi-VN"
    log = server.store().call_log(caller.sid)
    assert [e["step"] for e in log if e["kind"] == "input"] == ["choose_language"]
    assert [e["step"] for e in log if e["kind"] == "step"].count("main") == 1
    # The call goes on from where it really is.
    root = caller.follow(parse_twiml(again.text), Digits="0")
    assert says(root) == [("vi-VN", LANGUAGES["vi-VN"].goodbye)]


def test_simultaneous_retries_reach_different_workers_and_advance_once(server: Server) -> None:
    caller = server.caller()
    action = action_of(caller.twiml("/voice/incoming"))
    params = {**caller.params, "Digits": "3"}
    signature = caller.checker.sign(caller.base + action, params)
    start = threading.Barrier(6)

    def post() -> requests.Response:
        start.wait()
        return requests.post(
            caller.base + action, data=params, headers={"X-Twilio-Signature": signature}, timeout=15
        )

    with ThreadPoolExecutor(6) as pool:
        answers = [f.result() for f in [pool.submit(post) for _ in range(6)]]
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    assert all_in("ar-XA", says(parse_twiml(answers[0].text)))
    log = server.store().call_log(caller.sid)
    assert [e["digits"] for e in log if e["kind"] == "input"] == ["3"]
    state = server.store().load_call(caller.sid)
    assert state is not None and state.turn == 2 and state.language == "ar-XA"


def _walk_menus(server: Server, index: int, start: threading.Barrier) -> tuple[str, str, str]:
    """One caller choosing its language, hearing the hours, going back, saying goodbye."""
    language = "vi-VN" if index % 2 == 0 else "ar-XA"
    said = LANGUAGES[language]
    number = f"+849{index:08d}"
    caller = server.caller(caller=number)
    start.wait()
    root = caller.twiml("/voice/incoming")
    assert says(root)[0] == ("en-US", GREETING)
    root = caller.follow(root, Digits=said.key)
    assert all_in(language, says(root)) and said.menu in says(root)[0][1]
    root = caller.follow(root, Digits="3")
    assert all_in(language, says(root)) and said.hours in says(root)[0][1]
    root = caller.follow(root, Digits="1")
    assert all_in(language, says(root)) and said.menu in says(root)[-1][1]
    root = caller.follow(root, Digits="0")
    assert says(root) == [(language, said.goodbye)] and verbs(root) == ["Say", "Hangup"]
    caller.close()
    return caller.sid, number, language


def test_fifty_concurrent_calls_keep_their_own_state(server: Server) -> None:
    calls = 50
    start = threading.Barrier(calls)
    with ThreadPoolExecutor(calls) as pool:
        futures = [pool.submit(_walk_menus, server, i, start) for i in range(calls)]
        walked = [future.result() for future in futures]
    assert len({sid for sid, _, _ in walked}) == calls
    store = server.store()
    for sid, number, language in walked:
        log = store.call_log(sid)
        assert log[0]["kind"] == "call_started" and log[0]["caller"] == number, log
        key = LANGUAGES[language].key
        assert [e["digits"] for e in log if e["kind"] == "input"] == [key, "3", "1", "0"]
        steps = [e["step"] for e in log if e["kind"] == "step"]
        assert steps[:3] == ["welcome", "choose_language", "main"] and steps[-2:] == ["main", "bye"]
        assert log[-1]["kind"] == "hangup" and log[-1]["step"] == "bye"
        summary = store.summary(sid)
        assert summary is not None and summary.outcome == "self_service"
        assert summary.caller == number and summary.language == language
        state = store.load_call(sid)
        assert state is not None and state.sid == sid and state.caller == number
        assert state.language == language and state.ended and state.turn == 5


@pytest.mark.skipif(
    shared_redis_url() is not None, reason="stops its Redis: only with an embedded one"
)
def test_redis_stopped_mid_call_answers_safe_twiml(tmp_path: Path) -> None:
    with running_server(tmp_path, copy_sample_flows(tmp_path / "call_flows")) as server:
        caller = server.caller()
        menu = caller.follow(caller.twiml("/voice/incoming"), Digits="2")
        server.redis().shutdown(nosave=True)  # redis-py swallows the expected connection error
        assert server.embedded_pid is not None
        deadline = time.monotonic() + 10
        while process_alive(server.embedded_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not process_alive(server.embedded_pid)

        response = caller.post(action_of(menu), Digits="1")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/xml")
        root = parse_twiml(response.text)
        heard = says(root)
        assert heard[0] == ("vi-VN", phrase("apology", "vi-VN")[0])
        assert heard[1][0] == "vi-VN" and LANGUAGES["vi-VN"].voicemail in heard[1][1]
        assert verbs(root) == ["Say", "Say", "Record"]
        assert action_of(root).startswith("/voice/fallback?")

        for _ in range(server.workers * 2):  # asked several times: any worker may answer
            ready = server.get("/readyz")
            assert ready.status_code == 503 and ready.json()["redis"] is False
            assert server.get("/healthz").status_code == 200

        newcomer = server.caller(caller="+201001112222")
        fresh = newcomer.twiml("/voice/incoming")
        assert says(fresh)[0] == ("en-US", phrase("apology", "en-US")[0])
        assert verbs(fresh)[-1] == "Record"

        done = caller.follow(root, **RECORDING)
        assert says(done) == [("vi-VN", phrase("message_saved", "vi-VN")[0])]
        assert verbs(done) == ["Say", "Hangup"]
        assert caller.status().status_code == 200
        spooled = [
            json.loads(line)
            for line in (server.data_dir / "spool" / "events.jsonl").read_text().splitlines()
        ]
        kept = [e for e in spooled if e["sid"] == caller.sid]
        events = [event for line in kept for event in line["events"]]
        kinds = [e["kind"] for e in events]
        # The final status keeps the call's start with it, for a call Redis never had (the
        # replay drops it when Redis has the call).
        assert kinds == ["fallback", "voicemail", "status", "call_started"], kinds
        assert events[1]["url"] == RECORDING["RecordingUrl"]


def _main_menu_heard(server: Server) -> str:
    caller = server.caller()
    root = caller.follow(caller.twiml("/voice/incoming"), Digits="1")
    caller.close()
    return says(root)[0][1]


def _write(path: Path, text: str) -> None:
    """Replace a file at once, as an editor's save does: never a half-written file."""
    partial = path.with_suffix(".tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _readyz_everywhere(
    server: Server, settled: Callable[[dict[str, Any]], bool], seconds: float = 15.0
) -> list[dict[str, Any]]:
    """/readyz of every worker (each answer names its worker; a new connection each time, as
    one kept alive stays with one worker), asked again until every worker's latest answer is
    `settled` (each reloads on its own interval, later on a busy machine), or `seconds`."""
    time.sleep(RELOAD_INTERVAL * 2)
    deadline = time.monotonic() + seconds
    latest: dict[int, dict[str, Any]] = {}
    while True:
        ready = requests.get(server.base + "/readyz", headers={"Connection": "close"}, timeout=10)
        assert ready.status_code == 200, ready.text
        answer = ready.json()
        latest[answer["pid"]] = answer
        everywhere = len(latest) >= server.workers
        if everywhere and all(settled(a) for a in latest.values()):
            return list(latest.values())
        assert time.monotonic() < deadline, f"not settled on every worker: {latest}"
        time.sleep(RELOAD_INTERVAL / 4)


def test_flow_edits_reach_every_worker_and_calls_keep_their_version(server: Server) -> None:
    support = server.flows_dir / "support.yaml"
    original = support.read_text(encoding="utf-8")
    old, new = "For billing and payments", "For invoices and payments"
    assert old in original
    first_version = server.get("/readyz").json()["flows_version"]
    started_before = server.caller()
    waiting = started_before.twiml("/voice/incoming")
    try:
        _write(support, original.replace(old, new))
        answers = _readyz_everywhere(server, lambda a: a["flows_version"] != first_version)
        second_version = answers[0]["flows_version"]
        assert second_version != first_version
        assert all(a["flows_version"] == second_version and not a["errors"] for a in answers)
        heard = [_main_menu_heard(server) for _ in range(server.workers * 4)]
        assert [text for text in heard if not text.startswith(new)] == []

        # A call that began before the edit keeps the words of its own version.
        menu = started_before.follow(waiting, Digits="1")
        assert says(menu)[0][1].startswith(old)
        state = server.store().load_call(started_before.sid)
        assert state is not None and state.version == first_version

        # A broken edit: the last good version goes on serving, and /readyz shows why.
        _write(support, original.replace(old, new) + "\n  broken: [unclosed\n")
        for answer in _readyz_everywhere(server, lambda a: bool(a["errors"])):
            assert answer["flows_version"] == second_version, answer
            errors = answer["errors"]
            assert isinstance(errors, list) and errors, answer
            assert all(str(support) in str(error) for error in errors), errors
        heard = [_main_menu_heard(server) for _ in range(server.workers * 2)]
        assert [text for text in heard if not text.startswith(new)] == []

        _write(support, original)
        answers = _readyz_everywhere(
            server, lambda a: a["flows_version"] == first_version and not a["errors"]
        )
        assert all(a["flows_version"] == first_version and not a["errors"] for a in answers)
        assert all(_main_menu_heard(server).startswith(old) for _ in range(server.workers * 2))
    finally:
        if support.read_text(encoding="utf-8") != original:
            _write(support, original)


def test_the_auth_token_is_never_printed(server: Server) -> None:
    assert not (server.data_dir / "dev-auth-token").exists()
    assert AUTH_TOKEN not in server.log()


def test_a_kept_alive_connection_closes_after_its_share_of_answers(server: Server) -> None:
    # A connection stays with the worker that accepted it: one that never closed could keep one
    # worker busy while another idles. Its last allowed answer says so, and the next goes on a
    # new connection, which the least busy worker is likeliest to take.
    host, port = server.base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        closing = []
        for _ in range(REQUESTS_PER_CONNECTION * 2):
            connection.request("GET", "/readyz")
            answer = connection.getresponse()
            assert answer.status == 200
            answer.read()
            closing.append(answer.getheader("Connection", "").lower() == "close")
    finally:
        connection.close()
    last = REQUESTS_PER_CONNECTION - 1
    assert closing == ([False] * last + [True]) * 2


def test_metrics_add_up_the_calls_of_every_worker(server: Server) -> None:
    caller = server.caller()
    menu = caller.twiml("/voice/incoming")
    assert caller.follow(menu, Digits="1").find("Gather") is not None
    assert caller.status().status_code == 200  # hung up in the menu: self-service
    text = server.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("ivr_calls_started_total", (("flow", "support"),))] >= 1
    assert samples[("ivr_calls_ended_total", (("outcome", "self_service"),))] >= 1
    assert samples[("ivr_callers_waiting", ())] == 0


def test_the_series_to_alert_on_are_exposed_before_their_first_count(server: Server) -> None:
    text = server.get("/metrics").text
    names = {
        (s.name, tuple(sorted(s.labels.items())))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    for how in ("twilio", "unreported"):
        assert ("ivr_calls_closed_late_total", (("how", how),)) in names
    for outcome in ("answered", "voicemail", "abandoned", "self_service", "failed"):
        assert ("ivr_calls_ended_total", (("outcome", outcome),)) in names
