"""The call pages over the test client: listing, filters, cursor paging, CSV, one call, audio."""

from __future__ import annotations

import csv
import io
import re

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from ivr.calls.events import TranscriptionArrived, VoicemailRecorded
from ivr.calls.summary import FIELDS
from ivr.dashboard import calls
from ivr.settings import Settings
from ivr.store import Store
from tests.calls.builders import record_call
from tests.dashboard.conftest import PINNED, log_in

RE = "RE" + "ab" * 16
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 24


def signed_in(app: Flask, name: str = "sup") -> FlaskClient:
    client = app.test_client()
    assert log_in(client, name).status_code == 302
    return client


def some_calls(connection: redis.Redis) -> Store:
    store = Store(connection)
    record_call(store, "CA-answered", PINNED - 3000, caller="+84901111222")
    record_call(store, "CA-voicemail", PINNED - 2000, outcome="voicemail", queue="tech")
    record_call(store, "CA-formula", PINNED - 1000, outcome="abandoned", caller="=HYPERLINK(1)")
    return store


def sids(html: str) -> list[str]:
    return re.findall(r'id="call-([^"]+)"', html)


def test_calls_newest_first_and_filtered(dash_app: Flask, connection: redis.Redis) -> None:
    some_calls(connection)
    client = signed_in(dash_app)
    html = client.get("/dashboard/calls").get_data(as_text=True)
    assert sids(html) == ["CA-formula", "CA-voicemail", "CA-answered"]
    assert "+84901111222" in html and "/dashboard/calls/CA-answered" in html
    page = client.get("/dashboard/calls?outcome=voicemail").get_data(as_text=True)
    assert sids(page) == ["CA-voicemail"]
    page = client.get("/dashboard/calls?queue=billing&caller=%2B84901111222").get_data(as_text=True)
    assert sids(page) == ["CA-answered"]
    assert sids(client.get("/dashboard/calls?until=2026-12-02T09:20:00Z").get_data(as_text=True)) \
        == ["CA-answered"]  # fmt: skip
    bad = client.get("/dashboard/calls?outcome=lost")
    assert bad.status_code == 400 and "unknown outcome" in bad.get_data(as_text=True)
    assert client.get("/dashboard/calls?since=yesterday").status_code == 400
    assert client.get("/dashboard/calls?cursor=nonsense").status_code == 400
    odd = client.get("/dashboard/calls?queue=billing&_external=1&_anchor=x").get_data(as_text=True)
    assert "http://" not in odd.split("<main>", 1)[1] and "#x" not in odd


def test_since_and_until_without_an_offset_are_on_the_viewers_clock(
    dash_app: Flask, connection: redis.Redis
) -> None:
    some_calls(connection)  # 16:10, 16:26 and 16:43 in Hanoi (UTC+7)
    client = signed_in(dash_app)
    page = client.get("/dashboard/calls?tz=Asia/Ho_Chi_Minh&until=2026-12-02T16:20")
    html = page.get_data(as_text=True)
    assert sids(html) == ["CA-answered"] and "Asia/Ho_Chi_Minh clock" in html
    assert sids(client.get("/dashboard/calls?since=2026-12-02T16:20").get_data(as_text=True)) \
        == ["CA-formula", "CA-voicemail"]  # fmt: skip
    with_offset = client.get("/dashboard/calls?until=2026-12-02T09:20:00Z").get_data(as_text=True)
    assert sids(with_offset) == ["CA-answered"]
    export = client.get("/dashboard/calls.csv?until=2026-12-02T16:20").get_data(as_text=True)
    assert [row[0] for row in csv.reader(io.StringIO(export))][1:] == ["CA-answered"]


def test_older_link_pages_by_cursor(dash_app: Flask, connection: redis.Redis) -> None:
    store = Store(connection)
    for n in range(53):
        record_call(store, f"CA{n:03d}", PINNED - 10_000 + n * 10, queue="tech")
    client = signed_in(dash_app)
    first = client.get("/dashboard/calls?queue=tech").get_data(as_text=True)
    assert sids(first) == [f"CA{n:03d}" for n in range(52, 2, -1)]
    older = re.search(r'rel="next" href="([^"]+)"', first)
    assert older and "queue=tech" in older.group(1)
    second = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert sids(second) == ["CA002", "CA001", "CA000"] and 'rel="next"' not in second


def test_csv_has_the_contract_header_and_neutralises_formulas(
    dash_app: Flask, connection: redis.Redis
) -> None:
    some_calls(connection)
    response = signed_in(dash_app).get("/dashboard/calls.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == list(FIELDS)
    assert [r[0] for r in rows[1:]] == ["CA-formula", "CA-voicemail", "CA-answered"]
    assert rows[1][1] == "'=HYPERLINK(1)" and rows[3][1] == "'+84901111222"
    filtered = signed_in(dash_app).get("/dashboard/calls.csv?outcome=answered")
    assert len(list(csv.reader(io.StringIO(filtered.get_data(as_text=True))))) == 2
    assert dash_app.test_client().get("/dashboard/calls.csv").status_code == 302  # to the login


def test_csv_exports_every_matching_call_not_one_page(
    dash_app: Flask, connection: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(connection)
    for n in range(5):
        record_call(store, f"CA-{n}", PINNED - 1000 * (n + 1))
    record_call(store, "CA-other", PINNED - 500, queue="tech")
    monkeypatch.setattr(calls, "CSV_PAGE", 2)  # five calls come in three reads
    text = signed_in(dash_app).get("/dashboard/calls.csv?queue=billing").get_data(as_text=True)
    assert [r[0] for r in csv.reader(io.StringIO(text))][1:] == [f"CA-{n}" for n in range(5)]


def test_viewer_sees_masked_numbers_in_pages_and_csv(
    dash_app: Flask, connection: redis.Redis
) -> None:
    some_calls(connection)
    viewer = signed_in(dash_app, "Nguyễn")
    html = viewer.get("/dashboard/calls").get_data(as_text=True)
    assert "+84901111222" not in html and "+84•••••1222" in html
    text = viewer.get("/dashboard/calls.csv").get_data(as_text=True)
    assert "+84901111222" not in text and "+84•••••1222" in text
    assert "+84901111222" not in viewer.get("/dashboard/calls/CA-answered").get_data(as_text=True)


def test_one_call_shows_summary_timeline_and_route(
    dash_app: Flask, connection: redis.Redis
) -> None:
    some_calls(connection)
    client = signed_in(dash_app)
    html = client.get("/dashboard/calls/CA-answered").get_data(as_text=True)
    assert "+0.0" in html and "+10.0" in html and "+15.0" in html  # started, route, answered
    assert 'passed over <strong dir="auto">cairo</strong>' in html and "off shift" in html
    assert "agent_answered" in html and "lan" in html
    missing = client.get("/dashboard/calls/CA-nope")
    assert missing.status_code == 404 and "no call CA-nope" in missing.get_data(as_text=True)
    assert 'class="problem"' in missing.get_data(as_text=True)  # a page of the dashboard


def test_voicemail_player_streams_the_kept_file_and_links_the_ticket(
    dash_app: Flask, connection: redis.Redis, settings: Settings
) -> None:
    store = some_calls(connection)
    store.record("CA-vm", [VoicemailRecorded(PINNED - 500, recording_sid=RE, seconds=12)])
    store.record("CA-vm", [TranscriptionArrived(PINNED - 400, recording_sid=RE, text="مرحبا")])
    client = signed_in(dash_app)
    page = client.get("/dashboard/calls/CA-vm").get_data(as_text=True)
    assert "<audio" not in page and "not kept here" in page
    settings.recordings_dir.mkdir(parents=True, exist_ok=True)
    (settings.recordings_dir / f"{RE}.wav").write_bytes(WAV)
    page = client.get("/dashboard/calls/CA-vm").get_data(as_text=True)
    assert '<audio controls preload="none" src="/dashboard/calls/CA-vm/recording">' in page
    assert '<blockquote class="transcript" dir="auto">مرحبا</blockquote>' in page
    audio = client.get("/dashboard/calls/CA-vm/recording")
    assert audio.status_code == 200 and audio.mimetype == "audio/wav" and audio.data == WAV
    assert client.get("/dashboard/calls/CA-answered/recording").status_code == 404
    assert client.get("/dashboard/calls/..%2F..%2Fetc/recording").status_code == 404


def test_a_viewer_neither_hears_nor_downloads_the_voicemail(
    dash_app: Flask, connection: redis.Redis, settings: Settings
) -> None:
    store = some_calls(connection)
    media = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/" + RE
    voicemail = VoicemailRecorded(PINNED - 500, recording_sid=RE, url=media, seconds=12)
    said = "my account is 4242 and my address is 1 Hang Bai"
    store.record("CA-vm", [voicemail])
    store.record("CA-vm", [TranscriptionArrived(PINNED - 400, recording_sid=RE, text=said)])
    settings.recordings_dir.mkdir(parents=True, exist_ok=True)
    (settings.recordings_dir / f"{RE}.wav").write_bytes(WAV)
    viewer = signed_in(dash_app, "Nguyễn")
    page = viewer.get("/dashboard/calls/CA-vm").get_data(as_text=True)
    assert "<audio" not in page and "/dashboard/calls/CA-vm/recording" not in page
    assert "Recording and transcript available to supervisors." in page
    assert "4242" not in page and media not in page  # neither in the section nor the timeline
    assert "transcription" in page  # ... which still says that one arrived
    refused = viewer.get("/dashboard/calls/CA-vm/recording")
    assert refused.status_code == 403 and WAV not in refused.data
    assert viewer.get("/dashboard/calls/CA-answered/recording").status_code == 403
    for name in ("sup", "ada"):  # supervisors and admins listen, and read what was said
        listener = signed_in(dash_app, name)
        page = listener.get("/dashboard/calls/CA-vm").get_data(as_text=True)
        assert "<audio" in page and f'<blockquote class="transcript" dir="auto">{said}' in page
        assert media in page
        assert listener.get("/dashboard/calls/CA-vm/recording").data == WAV


def test_a_page_after_exactly_the_last_call_says_there_are_no_older_ones(
    dash_app: Flask, connection: redis.Redis
) -> None:
    store = Store(connection)
    for n in range(50):  # exactly one page
        record_call(store, f"CA{n:03d}", PINNED - 10_000 + n * 10, queue="sales")
    client = signed_in(dash_app)
    first = client.get("/dashboard/calls?queue=sales").get_data(as_text=True)
    older = re.search(r'rel="next" href="([^"]+)"', first)
    assert older
    after = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "No older calls match" in after and "/dashboard/calls?queue=sales" in after
    assert "No older" not in client.get("/dashboard/calls?queue=none").get_data(as_text=True)
