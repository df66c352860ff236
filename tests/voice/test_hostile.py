"""Hostile input: seeded fuzzed webhooks never get a 5xx, unsigned ones change nothing, and the
APIs and dashboard refuse forged credentials. `FUZZ_REQUESTS` sets how many (10,000 in
`make faults`)."""

from __future__ import annotations

import os
import random
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import redis
from flask.testing import FlaskClient

from ivr.voice.security import SignatureChecker
from tests.conftest import AUTH_TOKEN

REQUESTS = int(os.environ.get("FUZZ_REQUESTS", "1500"))
PATHS = (
    "/voice/incoming",
    "/voice/input",
    "/voice/dial",
    "/voice/recorded",
    "/voice/queue",
    "/voice/status",
    "/voice/hold",
    "/voice/hold/key",
    "/voice/fallback",
    "/voice/recording",
    "/voice/transcription",
    "/voice/answered",
    "/voice/dequeued",
    "/voice/nowhere",
)
FIELDS = (
    "CallSid",
    "From",
    "To",
    "Digits",
    "SpeechResult",
    "Confidence",
    "DialCallStatus",
    "DialCallDuration",
    "RecordingUrl",
    "RecordingSid",
    "RecordingDuration",
    "CallStatus",
    "CallDuration",
    "QueueResult",
    "QueueTime",
    "ParentCallSid",
    "TranscriptionText",
    "DequeingCallSid",
)
ODD = ("", "0", "-1", "1e309", "nan", "CA" + "f" * 32, "RE" + "0" * 32, "=cmd|' /C calc'!A0",
       "<Say>x</Say>", "'; DROP TABLE", "\u202etxet", "Tạm biệt", "مرحبا", "\x00", "9" * 5000,
       "#*#*", "completed", "in-progress", "bridged")  # fmt: skip


def _value(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.5:
        return rng.choice(ODD)
    if pick < 0.8:
        return "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 40)))
    return "".join(rng.choice("0123456789*#w") for _ in range(rng.randint(0, 80)))


def _request(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    path = rng.choice(PATHS)
    query = {
        k: _value(rng) for k in ("turn", "lang", "kind", "pool", "agent") if rng.random() < 0.4
    }
    if "turn" in query and rng.random() < 0.5:
        query["turn"] = str(rng.randint(0, 9))
    url = path + ("?" + urlencode(query) if query else "")
    fields = [(rng.choice(FIELDS), _value(rng)) for _ in range(rng.randint(0, 12))]
    if rng.random() < 0.3:
        fields.append(("CallSid", f"CA{rng.getrandbits(128):032x}"))
    return url, fields


def _keys(connection: redis.Redis) -> set[bytes]:
    return set(connection.scan_iter(count=1000))


def test_fuzzed_webhooks_never_5xx_and_unsigned_ones_change_nothing(
    client: FlaskClient, connection: redis.Redis
) -> None:
    rng = random.Random(20261203)
    checker = SignatureChecker(AUTH_TOKEN)
    client.get("/readyz")  # the flow version is saved once, before the count starts
    before = _keys(connection)
    statuses: dict[int, int] = {}
    for index in range(REQUESTS):
        url, fields = _request(rng)
        headers = {}
        if index % 3 == 0:
            headers["X-Twilio-Signature"] = "forged" + str(index)
        elif index % 3 == 1 and rng.random() < 0.5:
            headers["X-Twilio-Signature"] = checker.sign("http://localhost" + url, dict(fields))
            headers["X-Twilio-Signature"] = headers["X-Twilio-Signature"][::-1]  # tampered
        response = client.post(
            url,
            data=urlencode(fields),
            headers=headers,
            content_type="application/x-www-form-urlencoded",
        )
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (url, fields, response.status_code)
        # /voice/nowhere too: every /voice/ request is signature-checked, a URL that does not exist
        # included (it answers 404 only to Twilio).
        assert response.status_code == 403, (url, response.status_code)
    assert _keys(connection) == before, "an unsigned request changed Redis"

    # Signed garbage: a clear 4xx or TwiML with words, never a 5xx or an empty answer.
    for _ in range(REQUESTS // 3):
        url, fields = _request(rng)
        params = dict(fields)  # repeated keys: Twilio never sends them; the last one counts
        signature = checker.sign("http://localhost" + url, params)
        body = urlencode(list(params.items()))
        response = client.post(
            url,
            data=body,
            headers={"X-Twilio-Signature": signature},
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code < 500, (url, fields)
        if response.mimetype == "text/xml":
            root = ET.fromstring(response.get_data(as_text=True))
            assert root.tag == "Response"


def test_oversized_and_odd_bodies_are_refused_with_words(client: FlaskClient) -> None:
    huge = client.post("/voice/incoming", data={"Digits": "1" * 200_000})
    assert huge.status_code == 413 and b"<Say" in huge.data
    odd = client.post("/voice/incoming", data=b"\xff\xfe\x00garbage", content_type="text/plain")
    assert odd.status_code in (400, 403)


def test_apis_refuse_missing_and_forged_tokens(client: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Bearer forged"}, {"Authorization": "Basic eDp5"}):
        response = client.get("/api/agents", headers=headers)
        assert response.status_code == 401


def test_dashboard_refuses_forged_sessions(client: FlaskClient) -> None:
    client.set_cookie("ivr_dashboard", "eyJ1c2VyIjoiYWRtaW4ifQ.forged.signature", path="/dashboard")
    response = client.get("/dashboard/calls")
    assert response.status_code in (302, 303)
    assert "/dashboard/login" in response.headers["Location"]
