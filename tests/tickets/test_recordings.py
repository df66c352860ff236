"""Recording downloads against a loopback Twilio: allowed hosts only, audio only, kept safely."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from ivr.errors import IvrError
from ivr.settings import Settings
from ivr.tickets import recordings
from ivr.tickets.recordings import (
    RecordingClient,
    RecordingRefused,
    RecordingUnavailable,
    audio_kind,
    check_url,
    parse_duration,
    purge,
)
from tests.tickets.conftest import recording_sid
from tests.tickets.fakes import ACCOUNT_SID, AUTH_TOKEN, MP3_BYTES, FakeServices, Reply, running


def test_a_recording_is_fetched_with_basic_auth_and_kept(
    services: FakeServices, ticket_settings: Settings
) -> None:
    sid = recording_sid()
    url = services.recording_url(sid)
    fetched = RecordingClient(ticket_settings).fetch(sid, url)
    assert fetched.path == ticket_settings.recordings_dir / f"{sid}.wav"
    assert fetched.path.read_bytes()[:4] == b"RIFF"
    (get,) = services.seen("GET", "/2010-04-01/")
    assert get.path.endswith(f"{sid}.wav")
    expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert get.headers["Authorization"] == f"Basic {expected}"
    assert [p.name for p in ticket_settings.recordings_dir.iterdir()] == [f"{sid}.wav"]
    # Kept once: a second round reuses the file.
    RecordingClient(ticket_settings).fetch(sid, url)
    assert len(services.seen("GET", "/2010-04-01/")) == 1


def test_mp3_when_configured(services: FakeServices, ticket_settings: Settings) -> None:
    sid = recording_sid()
    url = services.recording_url(sid, MP3_BYTES, kind="mp3")
    fetched = RecordingClient(ticket_settings.with_(recording_format="mp3")).fetch(sid, url)
    assert fetched.kind == "mp3" and fetched.path.suffix == ".mp3"


def test_an_unlisted_ip_literal_is_refused(ticket_settings: Settings) -> None:
    with running("127.0.0.2") as elsewhere:
        sid = recording_sid()
        url = elsewhere.recording_url(sid)
        with pytest.raises(RecordingRefused, match="not in IVR_RECORDING_HOSTS"):
            RecordingClient(ticket_settings).fetch(sid, url)
        assert elsewhere.requests == []
    assert not ticket_settings.recordings_dir.exists()


def test_a_redirect_to_another_host_is_refused(
    services: FakeServices, ticket_settings: Settings
) -> None:
    with running("127.0.0.2") as elsewhere:
        sid = recording_sid()
        url = services.recording_url(sid)
        target = elsewhere.recording_url(sid) + ".wav"
        services.script(
            "GET", url[len(services.base) :] + ".wav", Reply(302, b"", {"Location": target})
        )
        with pytest.raises(RecordingRefused, match=r"127\.0\.0\.2"):
            RecordingClient(ticket_settings).fetch(sid, url)
        assert elsewhere.requests == []


def test_a_redirect_on_the_same_host_is_followed(
    services: FakeServices, ticket_settings: Settings
) -> None:
    sid = recording_sid()
    url = services.recording_url(sid)
    other = services.recording_url(recording_sid())
    services.script(
        "GET", url[len(services.base) :] + ".wav", Reply(307, b"", {"Location": other + ".wav"})
    )
    assert RecordingClient(ticket_settings).fetch(sid, url).path.is_file()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/passwd", "scheme"),
        ("ftp://api.twilio.com/x", "scheme"),
        ("http://api.twilio.com/2010-04-01/x", "https only"),
        ("https://api.twilio.com.evil.example/x", "not in IVR_RECORDING_HOSTS"),
        ("https://api.twilio.com:8443/x", "not in IVR_RECORDING_HOSTS"),
        ("https://127.0.0.2/x", "not in IVR_RECORDING_HOSTS"),
    ],
)
def test_urls_refused_before_any_request(url: str, why: str) -> None:
    with pytest.raises(RecordingRefused, match=why):
        check_url(url, ("api.twilio.com",))
    check_url("https://api.twilio.com/2010-04-01/x", ("api.twilio.com",))


def test_a_body_that_is_not_audio_is_refused(
    services: FakeServices, ticket_settings: Settings
) -> None:
    sid = recording_sid()
    url = services.recording_url(sid, b"<html>login</html>" * 10)
    with pytest.raises(RecordingRefused, match="not WAV or MP3"):
        RecordingClient(ticket_settings).fetch(sid, url)
    assert list(ticket_settings.recordings_dir.iterdir()) == []


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_bound_is_refused(
    services: FakeServices, ticket_settings: Settings, chunked: bool
) -> None:
    sid = recording_sid()
    url = services.recording_url(sid)  # a WAV of 8 kB
    if chunked:  # no Content-Length to go by: the bound is counted while reading
        path = url[len(services.base) :] + ".wav"
        services.script("GET", path, Reply(200, services.media[path], chunked=True))
    with pytest.raises(RecordingRefused, match="over 2000"):
        RecordingClient(ticket_settings, max_bytes=2000).fetch(sid, url)
    assert not list(ticket_settings.recordings_dir.glob("*"))


def test_a_connection_dropped_mid_body_is_retried_later(
    services: FakeServices, ticket_settings: Settings
) -> None:
    sid = recording_sid()
    url = services.recording_url(sid)
    path = url[len(services.base) :] + ".wav"
    services.script("GET", path, Reply(200, services.media[path][:3000], drop_mid_body=True))
    with pytest.raises(RecordingUnavailable, match="broke off"):
        RecordingClient(ticket_settings).fetch(sid, url)
    assert list(ticket_settings.recordings_dir.iterdir()) == []
    assert RecordingClient(ticket_settings).fetch(sid, url).path.is_file()


@pytest.mark.parametrize("status", [404, 408, 429, 503, 507, 520])
def test_passing_failures_are_retried_later(
    services: FakeServices, ticket_settings: Settings, status: int
) -> None:
    sid = recording_sid()
    url = services.recording_url(sid)
    path = url[len(services.base) :] + ".wav"
    services.script("GET", path, Reply(status, b"", {"Retry-After": "7"}))
    with pytest.raises(RecordingUnavailable) as caught:
        RecordingClient(ticket_settings).fetch(sid, url)
    assert caught.value.retry_after == 7.0


def test_a_full_disk_is_retried_later(services: FakeServices, ticket_settings: Settings) -> None:
    sid = recording_sid()
    url = services.recording_url(sid)
    ticket_settings.recordings_dir.mkdir(parents=True)
    # The temporary file lands on /dev/full, which answers every write with ENOSPC.
    os.symlink("/dev/full", ticket_settings.recordings_dir / f".{sid}.part")
    with pytest.raises(RecordingUnavailable, match="disk full"):
        RecordingClient(ticket_settings).fetch(sid, url)
    assert list(ticket_settings.recordings_dir.iterdir()) == []


def test_deleting_the_remote_recording_is_retried(
    services: FakeServices, ticket_settings: Settings
) -> None:
    sid = recording_sid()
    url = services.recording_url(sid)
    services.script("DELETE", url[len(services.base) :], Reply(500), Reply(503))
    naps: list[float] = []
    assert RecordingClient(ticket_settings, sleep=naps.append).delete_remote(url)
    assert len(services.seen("DELETE", "/2010-04-01/")) == 3
    assert naps == [0.5, 1.0]


def test_audio_kinds() -> None:
    assert audio_kind(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "wav"
    assert audio_kind(b"ID3\x04") == "mp3"
    assert audio_kind(b"\xff\xfb\x90") == "mp3"
    assert audio_kind(b"RIFF\x00\x00\x00\x00AVI ") is None
    assert audio_kind(b"") is None


def test_purge_deletes_old_recordings_only(tmp_path: Path) -> None:
    now = 2_000_000_000.0
    old, fresh = f"{recording_sid()}.wav", f"{recording_sid()}.mp3"
    for name, age in ((old, 31 * 86400), (fresh, 86400), ("notes.txt", 90 * 86400)):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (now - age, now - age))
    assert purge(tmp_path, parse_duration("30d"), now, dry_run=True) == [tmp_path / old]
    assert (tmp_path / old).exists()
    assert purge(tmp_path, parse_duration("30d"), now) == [tmp_path / old]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh, "notes.txt"])
    assert purge(tmp_path, parse_duration("12h"), now) == [tmp_path / fresh]


@pytest.mark.parametrize("text", ["30", "0d", "1w", "-3d", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(recordings.IvrError):
        parse_duration(text)


@pytest.mark.parametrize(
    "hosts",
    [
        "api.twilio.com:https",  # a port that is not a number broke every delivery round
        "https://api.twilio.com",
        "api.twilio.com/2010-04-01",
        "api.twilio.com:0",
        "api.twilio.com:70000",
        "api.twilio.com, media twilio.com",
    ],
)
def test_a_bad_recording_hosts_entry_is_refused_when_read(hosts: str) -> None:
    with pytest.raises(IvrError, match="IVR_RECORDING_HOSTS") as caught:
        Settings.from_env({"IVR_RECORDING_HOSTS": hosts})
    assert "host[:port]" in str(caught.value)


def test_recording_hosts_may_be_ipv6_literals_in_brackets() -> None:
    hosts = Settings.from_env({"IVR_RECORDING_HOSTS": "api.twilio.com, [::1]:8080"}).recording_hosts
    assert hosts == ("api.twilio.com", "[::1]:8080")
    check_url("http://[::1]:8080/x", hosts)
    with pytest.raises(RecordingRefused, match="not in IVR_RECORDING_HOSTS"):
        check_url("http://[::1]:8081/x", hosts)
    check_url("https://[2001:db8::1]/x", ("[2001:db8::1]",))


def test_kept_audio_is_readable_by_its_owner_only(
    services: FakeServices, ticket_settings: Settings
) -> None:
    # A caller's voice: the dashboard plays it to supervisors only, so the disk must not hand it
    # to every local account.
    sid = recording_sid()
    fetched = RecordingClient(ticket_settings).fetch(sid, services.recording_url(sid))
    assert fetched.path.stat().st_mode & 0o077 == 0
    assert ticket_settings.recordings_dir.stat().st_mode & 0o077 == 0
