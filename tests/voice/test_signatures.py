"""Signatures are checked against the URL Twilio called: IVR_PUBLIC_URL, or a trusted proxy's."""

from __future__ import annotations

import sys
import threading
import time
import xml.etree.ElementTree as ET

import redis
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from ivr.app import create_app
from ivr.settings import Settings
from ivr.simulate import new_call_sid
from ivr.voice.security import SignatureChecker
from tests.conftest import AUTH_TOKEN

PARAMS = {"From": "+84901111222", "To": "+15005550006"}


def post(client, url: str, signed_for: str, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    params = {"CallSid": new_call_sid(), **PARAMS}
    signature = SignatureChecker(AUTH_TOKEN).sign(signed_for, params)
    return client.post(
        url, data=params, headers={"X-Twilio-Signature": signature, **(headers or {})}
    )


def test_public_url_is_what_twilio_signed(settings: Settings, connection: redis.Redis) -> None:
    public = settings.with_(public_url="https://ivr.example.com")
    client = create_app(public, connection).test_client()
    assert (
        post(client, "/voice/incoming", "https://ivr.example.com/voice/incoming").status_code == 200
    )
    assert post(client, "/voice/incoming", "http://localhost/voice/incoming").status_code == 403
    query = "/voice/input?turn=1&lang=en-US"
    assert post(client, query, "https://ivr.example.com" + query).status_code == 200
    assert (
        post(client, query, "https://ivr.example.com/voice/input?turn=2&lang=en-US").status_code
        == 403
    )


def _voice_urls(document: bytes) -> list[str]:
    """Every URL a TwiML answer has Twilio call back, in document order."""
    found = []
    for element in ET.fromstring(document).iter():
        found += [value for value in element.attrib.values() if "/voice/" in value]
        found += [element.text] if element.tag == "Redirect" and element.text else []
    return found


def test_behind_a_path_prefix_twilio_is_sent_back_under_it(
    settings: Settings, connection: redis.Redis
) -> None:
    # A proxy serves the app at https://x.example.com/ivr and strips /ivr on the way in. A
    # relative "/voice/input" would have Twilio post to https://x.example.com/voice/input,
    # outside the app: a 404 and Twilio's "application error" at the caller's first key.
    public = settings.with_(public_url="https://x.example.com/ivr")
    client = create_app(public, connection).test_client()
    sid = new_call_sid()
    params = {"CallSid": sid, **PARAMS}
    signed = SignatureChecker(AUTH_TOKEN).sign("https://x.example.com/ivr/voice/incoming", params)
    answer = client.post("/voice/incoming", data=params, headers={"X-Twilio-Signature": signed})
    assert answer.status_code == 200
    urls = _voice_urls(answer.data)
    assert urls and all(url.startswith("/ivr/voice/") for url in urls), urls
    action = urls[0]
    params = {"CallSid": sid, **PARAMS, "Digits": "1"}
    signed = SignatureChecker(AUTH_TOKEN).sign("https://x.example.com" + action, params)
    below = action.removeprefix("/ivr")
    answer = client.post(below, data=params, headers={"X-Twilio-Signature": signed})
    assert answer.status_code == 200
    assert all(url.startswith("/ivr/voice/") for url in _voice_urls(answer.data))


def test_forwarded_headers_count_only_behind_a_trusted_proxy(
    settings: Settings, connection: redis.Redis
) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ivr.example.com"}
    signed_for = "https://ivr.example.com/voice/incoming"
    untrusting = create_app(settings, connection).test_client()
    assert post(untrusting, "/voice/incoming", signed_for, forwarded).status_code == 403
    trusting = create_app(settings.with_(trust_proxy=True), connection).test_client()
    assert post(trusting, "/voice/incoming", signed_for, forwarded).status_code == 200


def test_a_url_with_its_default_port_still_validates(
    settings: Settings, connection: redis.Redis
) -> None:
    client = create_app(settings, connection).test_client()
    assert post(client, "/voice/incoming", "http://localhost:80/voice/incoming").status_code == 200


@given(
    url=st.text(min_size=1, max_size=80),
    params=st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=12),
)
def test_the_one_step_signature_is_twilios(url: str, params: dict[str, str]) -> None:
    # The validator of Twilio's library is the reference the checker's fast path must equal.
    reference = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    assert SignatureChecker(AUTH_TOKEN).signature(url, params) == reference.encode()


def test_the_check_keeps_the_interpreter_lock() -> None:
    # hmac.digest lets go of the interpreter lock on every call: in a worker whose other threads
    # are busy, each webhook then waited for one of them to give it back (up to the switch
    # interval) just to check its signature. With a long interval and a thread that never lets
    # go on its own, a check that lets go pays the interval every time.
    checker = SignatureChecker(AUTH_TOKEN)
    params = {"CallSid": new_call_sid(), **PARAMS, "Digits": "1" * 300}
    interval = sys.getswitchinterval()
    running = threading.Event()
    stop = threading.Event()

    def busy() -> None:
        running.set()
        while not stop.is_set():
            pass

    sys.setswitchinterval(0.05)
    spinner = threading.Thread(target=busy)
    try:
        spinner.start()
        running.wait()
        began = time.perf_counter()
        for _ in range(40):  # 2 s in all if each check waits out the interval
            checker.signature("https://ivr.example.com/voice/incoming", params)
        took = time.perf_counter() - began
    finally:
        stop.set()
        spinner.join()
        sys.setswitchinterval(interval)
    assert took < 0.6


def test_a_voice_url_or_method_that_does_not_exist_is_refused_unless_signed(
    client: FlaskClient,
) -> None:
    checker = SignatureChecker(AUTH_TOKEN)
    params = {"CallSid": new_call_sid(), **PARAMS}
    for method, path, code in [("POST", "/voice/incomming", 404), ("PUT", "/voice/status", 405)]:
        unsigned = client.open(path, method=method, data=params)
        assert unsigned.status_code == 403, (method, path)
        signed = client.open(
            path,
            method=method,
            data=params,
            headers={
                "X-Twilio-Signature": checker.sign(
                    "http://localhost" + path, params if method == "POST" else {}
                )
            },
        )
        # A misconfigured webhook: Twilio gets the error code, with words a caller can hear.
        assert signed.status_code == code, (method, path)
        assert signed.mimetype == "text/xml"
        assert ET.fromstring(signed.data).tag == "Response"
    client.post("/voice/made-up-7f3a", data=params)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'kind="unknown",result="refused"' in metrics
    assert "made-up-7f3a" not in metrics and "incomming" not in metrics  # no label per path
    assert client.get("/api/no-such-thing").json is not None  # the API still answers in JSON
    assert client.get("/no-such-page").status_code == 404
