"""The host's table of recent calls: what one worker wrote, another finds, never a wrong entry."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
import redis

from ivr import hostcalls
from ivr.app import create_app
from ivr.hostcalls import SLOT_BYTES, HostCalls
from ivr.settings import Settings
from tests.conftest import Caller, spoken
from tests.voice.test_recent_calls import _action, _gets, pinned_app

STATE, SUMMARY = b'{"sid":"CA1","turn":2}', b'{"sid":"CA1"}'


def test_a_call_written_in_a_forked_process_is_found_in_the_parent() -> None:
    table = HostCalls(slots=64)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        table.put("CA1", table.clock(), STATE, SUMMARY, 3)
        os._exit(0)
    os.waitpid(child, 0)
    found = table.get("CA1")
    assert found is not None and found[1:] == (STATE, SUMMARY, 3)


def test_a_torn_or_foreign_or_old_entry_is_a_miss() -> None:
    now = [100.0]
    table = HostCalls(slots=1, seconds=60.0, clock=lambda: now[0])  # every sid shares one slot
    table.put("CA1", now[0], STATE, SUMMARY, 3)
    assert table.get("CA2") is None  # another call's entry
    table._memory[40] ^= 0xFF  # a byte changed by a writer killed halfway
    assert table.get("CA1") is None
    table.put("CA1", now[0], STATE, SUMMARY, 3)
    now[0] += 61
    assert table.get("CA1") is None  # too old
    table.put("CA1", now[0], STATE, SUMMARY, 4)
    assert table.get("CA1") == (now[0], STATE, SUMMARY, 4)
    table.put("CA1", now[0], b"x" * SLOT_BYTES, SUMMARY, 5)  # too big to share
    assert table.get("CA1") is None  # ... and the older entry no longer claims to be the last
    table.put("CA1", now[0], STATE, SUMMARY, 6)
    table.drop("CA1")
    assert table.get("CA1") is None


@pytest.fixture
def one_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostCalls]:
    """The table `ivr serve` maps before forking, for the apps (workers) built in the test."""
    table = HostCalls(slots=256)
    monkeypatch.setattr(hostcalls, "_shared", table)
    yield table


def test_a_menu_answered_by_another_worker_of_the_host_reads_nothing_back(
    settings: Settings, connection: redis.Redis, one_host: HostCalls
) -> None:
    one, other = (create_app(settings, connection).test_client() for _ in range(2))
    call = Caller(one)
    menu = _action(call.twiml("/voice/incoming"))
    before = _gets(connection)
    call.client = other
    root = call.twiml(menu, Digits="2")
    assert "thanh toán" in " ".join(spoken(root))
    call.client = one  # the first worker's own memory is older than the host's: not used
    root = call.twiml(_action(root), Digits="9")
    assert root.find("Gather") is not None
    assert _gets(connection) == before  # every webhook went straight to the write


def test_alternating_workers_on_one_host_answer_as_one_worker_would(
    settings: Settings, connection: redis.Redis, one_host: HostCalls
) -> None:
    one, other = (pinned_app(settings, connection).test_client() for _ in range(2))
    answers = []
    for alternate in (False, True):
        call, path, texts = Caller(one), "/voice/incoming", []
        for index, press in enumerate(["", "2", "9", "1"]):
            call.client = other if alternate and index % 2 else one
            text = call.post(path, **({"Digits": press} if press else {})).get_data(as_text=True)
            texts.append(text)
            if index < 3:
                path = _action(ET.fromstring(text))
        answers.append(texts)
    assert answers[0] == answers[1]
