"""Configuration from the environment (twelve-factor), read once into a frozen value."""

from __future__ import annotations

import math
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ivr.errors import IvrError

DEFAULT_RECORDING_HOSTS = ("api.twilio.com",)
# A name or an IPv6 literal in brackets, then an optional port.
HOST_PORT = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::(\d{1,5}))?$"
)
RECORDING_FORMATS = ("wav", "mp3")
DEFAULT_TICKET_MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment."""

    auth_token: str | None = None
    account_sid: str | None = None
    public_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path("var")
    flows_dir: Path = Path("call_flows")
    recordings_dir: Path = Path("recordings")
    recording_hosts: tuple[str, ...] = DEFAULT_RECORDING_HOSTS
    recording_format: str = "wav"
    delete_remote_recordings: bool = False
    transcribe_url: str | None = None
    transcribe_model: str = "whisper-1"
    transcribe_api_key: str | None = None
    ticket_max_attempts: int = DEFAULT_TICKET_MAX_ATTEMPTS
    twilio_api_url: str = "https://api.twilio.com"
    dev: bool = False
    trust_proxy: bool = False
    api_token: str | None = None
    secret_key: str | None = None
    reload_interval: float = 1.0
    call_ttl_seconds: int = 24 * 3600
    redis_timeout: float = 0.5  # one command
    webhook_redis_seconds: float = 1.0  # all the Redis time of one webhook
    retention_days: int = 90
    housekeeping: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `env` (the process environment by default)."""
        env = os.environ if env is None else env
        recording_format = (env.get("IVR_RECORDING_FORMAT") or "wav").strip().lower()
        if recording_format not in RECORDING_FORMATS:
            raise IvrError(f"IVR_RECORDING_FORMAT must be wav or mp3, not {recording_format!r}")
        return cls(
            auth_token=_secret(env.get("TWILIO_AUTH_TOKEN")),
            account_sid=_secret(env.get("TWILIO_ACCOUNT_SID")),
            public_url=_public_url(env.get("IVR_PUBLIC_URL")),
            redis_url=_redis_url(env.get("REDIS_URL")),
            data_dir=Path(env.get("IVR_DATA_DIR") or "var"),
            flows_dir=Path(env.get("IVR_FLOWS_DIR") or "call_flows"),
            recordings_dir=Path(env.get("IVR_RECORDINGS_DIR") or "recordings"),
            recording_hosts=_recording_hosts(env.get("IVR_RECORDING_HOSTS")),
            recording_format=recording_format,
            delete_remote_recordings=_flag(env.get("IVR_DELETE_REMOTE_RECORDINGS")),
            transcribe_url=_service_url(env, "IVR_TRANSCRIBE_URL"),
            transcribe_model=env.get("IVR_TRANSCRIBE_MODEL") or "whisper-1",
            transcribe_api_key=env.get("IVR_TRANSCRIBE_API_KEY") or None,
            ticket_max_attempts=_positive(
                env, "IVR_TICKET_MAX_ATTEMPTS", DEFAULT_TICKET_MAX_ATTEMPTS
            ),
            twilio_api_url=_service_url(env, "IVR_TWILIO_API_URL") or "https://api.twilio.com",
            dev=_flag(env.get("IVR_DEV")),
            trust_proxy=_flag(env.get("IVR_TRUST_PROXY")),
            api_token=_secret(env.get("IVR_API_TOKEN")),
            secret_key=_secret(env.get("IVR_SECRET_KEY")),
            reload_interval=_seconds(env, "IVR_RELOAD_INTERVAL", 1.0),
            # A century at most: a longer one reaches before year 1 (and past what Redis can
            # set as a record's time to live).
            retention_days=_positive(env, "IVR_RETENTION_DAYS", 90, most=36_500),
            housekeeping=_flag(env.get("IVR_HOUSEKEEPING")),
        )

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def require_auth_token(self) -> Settings:
        """Settings with an auth token: the configured one, or in dev mode a stable dev token."""
        settings = self
        if self.dev and not self.api_token:
            settings = replace(settings, api_token=dev_token(self.data_dir, "dev-api-token"))
        if self.auth_token:
            return settings
        if not self.dev:
            raise IvrError(
                "TWILIO_AUTH_TOKEN is not set: refusing to serve unsigned webhooks "
                "(set IVR_DEV=1 for a development token)"
            )
        return replace(settings, auth_token=dev_token(self.data_dir))


def dev_token(data_dir: Path, name: str = "dev-auth-token") -> str:
    """A development secret of a data dir, created on first use and kept there."""
    path = data_dir / name
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    tmp = path.with_name(f"{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(token + "\n")
    os.chmod(tmp, 0o600)
    try:
        # A link never replaces: when workers start together, the first one's token wins for all.
        os.link(tmp, path)
    except FileExistsError:
        token = path.read_text().strip() or token
    finally:
        tmp.unlink()
    return token


def _public_url(text: str | None) -> str | None:
    """IVR_PUBLIC_URL without its trailing slash. One that is not a base URL would fail every
    webhook's signature, so every call would hear Twilio's application error: refused now."""
    url = (text or "").strip().rstrip("/")
    if not url:
        return None
    parts = urlsplit(url)
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
        or "/voice" in parts.path
    ):
        raise IvrError(
            f"IVR_PUBLIC_URL must be the base URL Twilio calls, like https://ivr.example.com "
            f"(without /voice/...), not {text!r}"
        )
    return url


def _service_url(env: Mapping[str, str], name: str) -> str | None:
    """An outside service's URL without its trailing slash; one without http(s) and a host
    would fail every request to it, long after the start, so it is refused now."""
    text = env.get(name) or ""
    url = text.strip().rstrip("/")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise IvrError(
            f"{name} must be an http(s) URL, like https://host.example.com, not {text!r}"
        )
    return url


def _recording_hosts(text: str | None) -> tuple[str, ...]:
    """IVR_RECORDING_HOSTS as its entries; one that is not `host[:port]` is refused now, not
    met by every download later."""
    hosts = tuple(h.strip() for h in (text or "").split(",") if h.strip())
    for host in hosts:
        match = HOST_PORT.match(host)
        if not match or (match.group(1) is not None and not 0 < int(match.group(1)) < 65536):
            raise IvrError(
                f"IVR_RECORDING_HOSTS: {host!r} is not host[:port]"
                " (like api.twilio.com, 127.0.0.1:8080 or [::1]:8080)"
            )
    return hosts or DEFAULT_RECORDING_HOSTS


def _secret(text: str | None) -> str | None:
    """A token as given, less the line end a secret file or manager often adds: with it, every
    signature would be refused as forged and every API call as unauthorised."""
    return (text or "").strip() or None


def _redis_url(text: str | None) -> str | None:
    """REDIS_URL, checked now: a malformed one is refused at start, not met by every worker."""
    from ivr.redis_url import parse

    url = (text or "").strip() or None
    if url:
        parse(url)
    return url


def _positive(env: Mapping[str, str], name: str, default: int, most: int | None = None) -> int:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise IvrError(f"{name} must be a whole number of at least 1, not {text!r}")
    if most is not None and int(text) > most:
        raise IvrError(f"{name} must be at most {most}, not {text}")
    return int(text)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    # nan and inf parse, but would stop the check from ever running (or run it on every request)
    if not math.isfinite(seconds) or seconds < 0:
        raise IvrError(f"{name} must be a number of seconds, 0 or more, not {text!r}")
    return seconds


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")
