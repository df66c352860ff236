"""Voicemail audio: fetched from Twilio's allowed hosts only, checked to be audio, kept on disk.

A recording URL comes from a webhook, so it is treated as hostile: only hosts named in
IVR_RECORDING_HOSTS, https unless the host is loopback, redirects checked hop by hop, the body
bounded and sniffed, and the file named from the validated RecordingSid alone.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from ivr.errors import IvrError
from ivr.settings import Settings
from ivr.tickets.model import RECORDING_SID, SIMULATED_ACCOUNT_SID

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024 * 1024  # an hour of 8 kHz 16-bit WAV is 58 MB
MAX_REDIRECTS = 3
TIMEOUT = (5.0, 30.0)
DELETE_TRIES = 3
FILE_NAME = re.compile(r"^RE[0-9a-fA-F]{32}\.(wav|mp3)$")
PART_NAME = re.compile(r"^\.RE[0-9a-fA-F]{32}\.part$")  # a download cut off by a killed worker
CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}


class RecordingRefused(IvrError):
    """A recording that must not be fetched or kept: wrong host, not audio, too big."""


class RecordingUnavailable(IvrError):
    """A recording that could not be fetched or kept this time; worth trying again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Fetched:
    """A recording kept on disk."""

    path: Path
    kind: str  # "wav" | "mp3"


def audio_kind(head: bytes) -> str | None:
    """`wav` or `mp3` when the first bytes are those of such a file, else None."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "mp3"  # an MPEG audio frame sync
    return None


def is_loopback(host: str) -> bool:
    """Whether a host name or literal is this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, allowed: tuple[str, ...]) -> None:
    """Refuse a URL whose scheme or host[:port] is not allowed for recordings."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http"):
        raise RecordingRefused(f"scheme {parts.scheme or '(none)'!r} refused for a recording")
    if not host:
        raise RecordingRefused(f"no host in recording URL {url!r}")
    if parts.scheme == "http" and not is_loopback(host):
        raise RecordingRefused(f"{host}: recordings are fetched over https only")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise RecordingRefused(f"bad port in recording URL: {exc}") from None
    default = 443 if parts.scheme == "https" else 80
    for entry in allowed:
        name, entry_port = _split_entry(entry.lower())
        if name == host.strip("[]") and int(entry_port or default) == port:
            return
    raise RecordingRefused(f"host {host}:{port} is not in IVR_RECORDING_HOSTS")


def _split_entry(entry: str) -> tuple[str, str]:
    """An IVR_RECORDING_HOSTS entry as (host without brackets, port or "")."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        return name, rest.removeprefix(":")
    name, _, port = entry.partition(":")
    return name, port


def media_url(recording_url: str, fmt: str) -> str:
    """Twilio serves a recording's audio at its URL plus `.wav` or `.mp3`."""
    if recording_url.endswith((".wav", ".mp3")):
        return recording_url
    return f"{recording_url}.{fmt}"


class RecordingClient:
    """Twilio's recording media: download with the account's credentials, and delete."""

    def __init__(
        self,
        settings: Settings,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.settings = settings
        self.max_bytes = max_bytes
        self.session = session or requests.Session()
        self.sleep = sleep
        self.auth: tuple[str, str] | None = None
        if settings.account_sid and settings.auth_token:
            self.auth = (settings.account_sid, settings.auth_token)

    def fetch(self, recording_sid: str, recording_url: str) -> Fetched:
        """Download a recording into the recordings dir (a file already kept is reused)."""
        if not RECORDING_SID.match(recording_sid):
            raise RecordingRefused(f"not a RecordingSid: {recording_sid!r}")
        directory = self.settings.recordings_dir
        for kind in ("wav", "mp3"):
            kept = directory / f"{recording_sid}.{kind}"
            if kept.is_file():
                return Fetched(kept, kind)
        if f"/Accounts/{SIMULATED_ACCOUNT_SID}/" in urlsplit(recording_url).path:
            # Asking Twilio would only earn a 404, retried for an hour before the ticket went out.
            raise RecordingRefused("a simulated call's recording: there is no audio to fetch")
        url = media_url(recording_url, self.settings.recording_format)
        response = self._get(url)
        try:
            return self._keep(recording_sid, response)
        finally:
            response.close()

    def delete_remote(self, recording_url: str) -> bool:
        """Delete the recording from Twilio (a few tries); whether it is gone."""
        url = recording_url.removesuffix(".wav").removesuffix(".mp3")
        check_url(url, self.settings.recording_hosts)
        for attempt in range(DELETE_TRIES):
            try:
                answer = self.session.delete(url, auth=self.auth, timeout=TIMEOUT)
                if answer.status_code in (200, 204, 404):
                    return True
                log.warning("deleting %s: HTTP %s", url, answer.status_code)
            except requests.RequestException as exc:
                log.warning("deleting %s: %s", url, exc)
            if attempt + 1 < DELETE_TRIES:
                self.sleep(0.5 * 2**attempt)
        return False

    def _get(self, url: str) -> requests.Response:
        first_host = urlsplit(url).netloc
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, self.settings.recording_hosts)
            # The account's credentials go to the URL Twilio gave, never to where it redirects.
            auth = self.auth if urlsplit(url).netloc == first_host else None
            try:
                response = self.session.get(
                    url, auth=auth, timeout=TIMEOUT, stream=True, allow_redirects=False
                )
            except requests.RequestException as exc:
                raise RecordingUnavailable(f"fetching the recording: {exc}") from None
            if response.is_redirect:
                location = response.headers.get("Location", "")
                response.close()
                url = urljoin(url, location)
                continue
            if response.status_code in (404, 408, 429) or response.status_code >= 500:
                # Twilio answers 404 for a few seconds after the callback, until the file exists.
                response.close()
                raise RecordingUnavailable(
                    f"fetching the recording: HTTP {response.status_code}",
                    retry_after_seconds(response.headers.get("Retry-After")),
                )
            if response.status_code != 200:
                response.close()
                raise RecordingRefused(f"fetching the recording: HTTP {response.status_code}")
            return response
        raise RecordingRefused(f"more than {MAX_REDIRECTS} redirects fetching a recording")

    def _keep(self, recording_sid: str, response: requests.Response) -> Fetched:
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            raise RecordingRefused(f"recording of {length} bytes is over {self.max_bytes}")
        directory = self.settings.recordings_dir
        tmp = directory / f".{recording_sid}.part"
        try:
            # A caller's voice: owner-only, as the dashboard plays it to supervisors only.
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            size = 0
            head = b""
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            with os.fdopen(os.open(tmp, flags, 0o600), "wb") as out:
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise RecordingRefused(f"recording is over {self.max_bytes} bytes")
                    if len(head) < 12:
                        head += chunk[: 12 - len(head)]
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            kind = audio_kind(head)
            if kind is None:
                raise RecordingRefused("the recording's body is not WAV or MP3 audio")
            final = directory / f"{recording_sid}.{kind}"
            os.replace(tmp, final)
            return Fetched(final, kind)
        except requests.RequestException as exc:
            raise RecordingUnavailable(f"the recording's download broke off: {exc}") from None
        except OSError as exc:
            reason = "disk full" if exc.errno == errno.ENOSPC else "cannot keep the recording"
            raise RecordingUnavailable(f"{reason}: {exc}") from None
        finally:
            tmp.unlink(missing_ok=True)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, at.timestamp() - (time.time() if now is None else now))


def purge(directory: Path, older_than: float, now: float, dry_run: bool = False) -> list[Path]:
    """Delete the recordings kept longer than `older_than` seconds, and the pieces of downloads
    cut off that long ago (a worker killed mid-download); the files (to be) deleted."""
    if not directory.is_dir():
        return []
    cutoff = now - older_than
    doomed = sorted(
        path
        for path in directory.iterdir()
        if (FILE_NAME.match(path.name) or PART_NAME.match(path.name))
        and path.is_file()
        and path.stat().st_mtime < cutoff
    )
    if not dry_run:
        for path in doomed:
            path.unlink(missing_ok=True)
    return doomed


_DURATION = re.compile(r"^(\d+)([dhm])$")


def parse_duration(text: str) -> float:
    """`30d`, `12h` or `45m` as seconds."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise IvrError(f"not a duration: {text!r} (like 30d, 12h or 45m)")
    unit = {"d": 86400, "h": 3600, "m": 60}[match.group(2)]
    return float(int(match.group(1)) * unit)
