"""The /voice/ webhooks through the Flask test client, on a real Redis, with signed requests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, urlencode

import redis
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from ivr.store import CALL_KEY
from ivr.voice.params import parse_form
from tests.conftest import Caller, spoken


def test_incoming_call_greets_and_offers_languages(caller: Caller) -> None:
    root = caller.twiml("/voice/incoming")
    words = spoken(root)
    assert words[0] == "Thank you for calling customer support."
    assert "Tiếng Việt" in words[2] and "للعربية" in words[3]
    assert [say.attrib["language"] for say in root.iter("Say")][1:] == ["en-US", "vi-VN", "ar-XA"]
    gather = root.find("Gather")
    assert gather is not None and gather.attrib["action"].startswith("/voice/input?turn=1")


def test_vietnamese_caller_hears_vietnamese_menu(caller: Caller) -> None:
    root = caller.follow(caller.twiml("/voice/incoming"), Digits="2")
    words = spoken(root)
    assert any("thanh toán" in w for w in words)
    assert root.find("Gather").attrib["language"] == "vi-VN"  # type: ignore[union-attr]


def test_arabic_caller_hears_arabic_menu(caller: Caller) -> None:
    root = caller.follow(caller.twiml("/voice/incoming"), Digits="3")
    assert any("للفواتير" in w for w in spoken(root))
    say = root.find("Gather/Say")
    assert say is not None and say.attrib["language"] == "ar-XA"
    assert say.attrib["voice"] == "Google.ar-XA-Standard-A"
    # Spoken in ar-XA (a voice's code), heard in a code speech recognisers take.
    assert root.find("Gather").attrib["language"] == "ar-EG"  # type: ignore[union-attr]


def test_retried_webhook_answers_the_same_and_does_not_advance(
    caller: Caller, connection: redis.Redis
) -> None:
    first_text = caller.post("/voice/incoming").get_data(as_text=True)
    action = ET.fromstring(first_text).find("Gather").attrib["action"]  # type: ignore[union-attr]
    once = caller.post(action, Digits="2").get_data(as_text=True)
    state_after_once = connection.hget(CALL_KEY.format(caller.sid), "state")
    again = caller.post(action, Digits="2").get_data(as_text=True)
    assert again == once
    assert connection.hget(CALL_KEY.format(caller.sid), "state") == state_after_once
    assert caller.post("/voice/incoming").get_data(as_text=True) == first_text


def test_forged_signature_is_refused_and_stores_nothing(
    caller: Caller, connection: redis.Redis
) -> None:
    response = caller.post("/voice/incoming", token="not-the-token")
    assert response.status_code == 403
    assert not connection.keys("ivr:call*")


def test_unsigned_request_is_refused(client: FlaskClient, connection: redis.Redis) -> None:
    response = client.post("/voice/incoming", data={"CallSid": "CA" + "0" * 32})
    assert response.status_code == 403
    assert not connection.keys("ivr:call*")


def test_tampered_parameters_are_refused(caller: Caller, connection: redis.Redis) -> None:
    params = dict(caller.params)
    signature = caller.checker.sign("http://localhost/voice/incoming", params)
    response = caller.client.post(
        "/voice/incoming", data={**params, "To": "+19999999999"},
        headers={"X-Twilio-Signature": signature},
    )  # fmt: skip
    assert response.status_code == 403
    assert not connection.keys("ivr:call*")


def test_unknown_call_at_an_action_url_starts_cleanly(caller: Caller) -> None:
    root = caller.twiml("/voice/input?turn=4&lang=en-US", Digits="1")
    assert spoken(root)[0] == "Thank you for calling customer support."


def test_garbage_parameters_get_4xx_with_words_never_500(client: FlaskClient) -> None:
    bad = Caller(client)
    bad.params["CallSid"] = "not-a-sid"
    response = bad.post("/voice/incoming")
    assert response.status_code == 400
    assert spoken(ET.fromstring(response.get_data(as_text=True)))


def test_odd_digits_are_an_invalid_choice(caller: Caller) -> None:
    root = caller.twiml("/voice/incoming")
    again = caller.follow(root, Digits="*#*")
    assert "not one of the choices" in spoken(again)[0]


FORM_TEXT = st.text(alphabet=st.sampled_from("ab+%&=;20zé\x00"), max_size=40)


@given(body=FORM_TEXT | st.dictionaries(st.text(max_size=8), st.text(max_size=12)).map(urlencode))
def test_the_form_parser_reads_what_parse_qsl_reads(body: str) -> None:
    # The webhooks' own parser must read any body, well-formed or not, as the standard one does.
    assert parse_form(body) == dict(parse_qsl(body, keep_blank_values=True))
