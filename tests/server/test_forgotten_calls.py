"""Under the real `ivr serve`: a call whose final status callback never came is closed by the
workers' housekeeping with the status Twilio's REST API (a loopback server) gives."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from ivr.calls.events import CallStarted, RouteDecided
from ivr.simulate import new_call_sid
from tests.conftest import AUTH_TOKEN
from tests.server.conftest import copy_sample_flows, running_server
from tests.tickets.fakes import ACCOUNT_SID, FakeServices, Reply

pytestmark = pytest.mark.server

HOUSEKEEPING_WAIT = 20.0  # the first round runs within 5 s of a worker's start


def test_a_call_left_under_way_is_closed_with_twilios_final_status(tmp_path: Path) -> None:
    with FakeServices() as twilio:
        env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "IVR_TWILIO_API_URL": twilio.base}
        flows = copy_sample_flows(tmp_path / "call_flows")
        with running_server(tmp_path / "serve", flows, workers=2, env=env) as server:
            sid, started = new_call_sid(), time.time() - 2 * 3600
            store = server.store()
            store.record(sid, [CallStarted(started, caller="+84901111222", flow="support")])
            store.record(sid, [RouteDecided(started + 8, queue="billing", chosen="hanoi")])
            ended = format_datetime(datetime.fromtimestamp(started + 40, UTC))
            body = {"sid": sid, "status": "completed", "duration": "40", "end_time": ended}
            path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json"
            twilio.script("GET", path, Reply(200, json.dumps(body).encode()))
            deadline = time.monotonic() + HOUSEKEEPING_WAIT
            summary = store.summary(sid)
            while summary is not None and summary.ended_at is None:
                assert time.monotonic() < deadline, server.log()[-2000:]
                time.sleep(0.2)
                summary = store.summary(sid)
            assert summary is not None and summary.outcome == "abandoned"
            assert summary.duration == 40 and summary.ended_at == pytest.approx(started + 40, 1)
            (asked,) = twilio.seen("GET", path)
            expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
            assert asked.headers["Authorization"] == f"Basic {expected}"
