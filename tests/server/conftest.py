"""The real `ivr serve` (gunicorn, several workers) in a subprocess, called over loopback HTTP.

Requests are signed exactly as Twilio signs them. With REDIS_URL set the servers use that Redis
(flushed before and after each server, as the other Redis-backed tests do); otherwise each server
starts its own embedded Redis in its data dir, and must stop it on exit.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import redis
import requests

from ivr import redis_url as urls
from ivr.simulate import new_call_sid
from ivr.store import Store
from ivr.voice.security import SignatureChecker
from tests.conftest import AUTH_TOKEN, SAMPLE_FLOWS, SUPPORT_NUMBER, parse_twiml

WORKERS = 3
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
RELOAD_INTERVAL = 0.2


def shared_redis_url() -> str | None:
    """The Redis the suite runs against, if one was given."""
    return os.environ.get("REDIS_URL") or None


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One running `ivr serve`: its address, its directories and its Redis."""

    def __init__(
        self,
        root: Path,
        flows_dir: Path,
        workers: int = WORKERS,
        redis_url: str | None = None,
        env: dict[str, str] | None = None,
        flush: bool = True,
        threads: int | None = None,
    ) -> None:
        self.given_redis_url = redis_url or shared_redis_url()
        self.threads = threads  # per worker; `ivr serve`'s default when None
        self.extra_env = dict(env or {})
        self.flush = flush  # a shared Redis is flushed before and after, unless told not to
        self.root = root
        self.flows_dir = flows_dir
        self.data_dir = root / "var"
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "server.log"
        self.redis_url = ""
        self.embedded_pid: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.http = requests.Session()

    @property
    def embedded(self) -> bool:
        """Whether the server runs its own Redis (no REDIS_URL given)."""
        return self.given_redis_url is None

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "IVR_DEV")}
        env.update(
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            IVR_DATA_DIR=str(self.data_dir),
            IVR_FLOWS_DIR=str(self.flows_dir),
            IVR_RECORDINGS_DIR=str(self.root / "recordings"),
            IVR_RELOAD_INTERVAL=str(RELOAD_INTERVAL),
        )
        env.pop("IVR_PUBLIC_URL", None)
        env.pop("IVR_TRUST_PROXY", None)
        if self.given_redis_url:
            env["REDIS_URL"] = self.given_redis_url
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        """Launch the server and wait until /readyz says it serves."""
        shared = self.given_redis_url
        if shared and self.flush:
            urls.client(shared, 2).flushdb()
        command = [sys.executable, "-m", "ivr", "serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        command += ["--threads", str(self.threads)] if self.threads else []
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.root,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so a failed test can end the whole process group
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"ivr serve exited with {self.process.returncode}:\n{self.log()}")
            with suppress(requests.RequestException):
                if self.http.get(self.base + "/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"ivr serve not ready after {READY_TIMEOUT:.0f} s:\n{self.log()}")
            time.sleep(0.05)
        if self.embedded:
            self.redis_url = (self.data_dir / "redis.url").read_text().strip()
            info = self.redis().info("server")
            assert isinstance(info, dict)
            self.embedded_pid = int(info["process_id"])
        else:
            self.redis_url = shared or ""

    def stop(self) -> None:
        """SIGTERM, as a process manager would; the server and its embedded Redis must go."""
        assert self.process is not None
        self.http.close()
        # urllib3 closes a pool's sockets when the pool is collected, and pools sit in reference
        # cycles: collect them, or the workers drain those idle connections until keep-alive ends.
        gc.collect()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"ivr serve ignored SIGTERM for {STOP_TIMEOUT:.0f} s:\n{self.log()}")
        assert code == 0, f"ivr serve exited with {code}:\n{self.log()}"
        assert not list(self.data_dir.glob("metrics-*")), "the workers' metric files outlived serve"
        if self.embedded:
            assert self.embedded_pid is not None
            assert not process_alive(self.embedded_pid), "the embedded redis-server outlived serve"
            assert not (self.data_dir / "redis.url").exists()
            with pytest.raises((redis.RedisError, OSError)):
                redis.Redis.from_url(self.redis_url, socket_timeout=0.5).ping()
        elif self.flush:
            self.redis().flushdb()

    def kill(self) -> None:
        """End the server's whole process group at once (only after a failure)."""
        if self.process is not None and self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def log(self) -> str:
        """What the server wrote to stdout and stderr (the tail of it)."""
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""

    def redis(self) -> redis.Redis:
        """A client of the server's Redis."""
        return urls.client(self.redis_url, 2)

    def store(self) -> Store:
        """The product's Store over the server's Redis, to read what the server kept."""
        return Store(self.redis())

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, timeout=10)

    def caller(self, to: str = SUPPORT_NUMBER, caller: str = "+84901111222") -> HttpCaller:
        return HttpCaller(self.base, to=to, caller=caller)


def process_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def worker_pids(server: Server) -> list[int]:
    """The gunicorn workers: the children of the master (the serve process itself)."""
    assert server.process is not None
    master = server.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    own_redis = {server.embedded_pid}
    return [int(pid) for pid in children if int(pid) not in own_redis]


def copy_sample_flows(target: Path) -> Path:
    """A private, editable copy of the sample call flows."""
    shutil.copytree(SAMPLE_FLOWS, target, ignore=shutil.ignore_patterns("scenarios"))
    return target


@contextmanager
def running_server(
    root: Path,
    flows_dir: Path,
    workers: int = WORKERS,
    redis_url: str | None = None,
    env: dict[str, str] | None = None,
    flush: bool = True,
    threads: int | None = None,
) -> Iterator[Server]:
    """A started server, stopped (and checked to be gone) afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    server = Server(root, flows_dir, workers, redis_url, env, flush, threads)
    server.start()
    try:
        yield server
    except BaseException:
        server.kill()
        raise
    server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on a copy of the sample flows, shared by a test module."""
    root = tmp_path_factory.mktemp("serve")
    with running_server(root, copy_sample_flows(root / "call_flows")) as running:
        yield running


class HttpCaller:
    """Plays Twilio for one call over real HTTP: every request signed with the auth token."""

    def __init__(
        self,
        base: str,
        to: str = SUPPORT_NUMBER,
        caller: str = "+84901111222",
        from_country: str = "VN",
    ) -> None:
        self.base = base
        self.sid = new_call_sid()
        self.params = {
            "CallSid": self.sid,
            "AccountSid": "AC" + "0" * 32,
            "From": caller,
            "To": to,
            "FromCountry": from_country,
            "Direction": "inbound",
            "CallStatus": "in-progress",
        }
        self.checker = SignatureChecker(AUTH_TOKEN)
        self.http = requests.Session()

    def post(self, path: str, **extra: str) -> requests.Response:
        """POST a webhook, signed for the exact URL and parameters sent."""
        params = {**self.params, **extra}
        signature = self.checker.sign(self.base + path, params)
        return self.send(path, params, {"X-Twilio-Signature": signature})

    def send(self, path: str, params: dict[str, str], headers: dict[str, str]) -> requests.Response:
        """POST as given, signature or not."""
        return self.http.post(self.base + path, data=params, headers=headers, timeout=15)

    def twiml(self, path: str, **extra: str) -> ET.Element:
        """POST a webhook that must answer 200 TwiML; its parsed document."""
        response = self.post(path, **extra)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/xml")
        return parse_twiml(response.text)

    def follow(self, root: ET.Element, **extra: str) -> ET.Element:
        """Post to the action of the verb `root` waits on (Gather, Dial or Record)."""
        return self.twiml(action_of(root), **extra)

    def status(self, status: str = "completed", duration: str = "42") -> requests.Response:
        """Twilio's status callback at the end of the call."""
        return self.post("/voice/status", CallStatus=status, CallDuration=duration)

    def close(self) -> None:
        self.http.close()


def action_of(root: ET.Element) -> str:
    """The action URL of the verb a TwiML document waits on."""
    waiting = [verb for verb in root if verb.tag in ("Gather", "Dial", "Record")]
    assert waiting, ET.tostring(root, encoding="unicode")
    return waiting[0].attrib["action"]


def says(root: ET.Element) -> list[tuple[str, str]]:
    """(language, text) of every Say of a document, nested ones included, in order."""
    return [(el.attrib.get("language", ""), el.text or "") for el in root.iter("Say")]


def verbs(root: ET.Element) -> list[str]:
    """The top-level verbs of a document, in order."""
    return [verb.tag for verb in root]


def dialled(root: ET.Element) -> list[str]:
    """The numbers, clients or SIP URIs a document's Dial rings."""
    dial = root.find("Dial")
    assert dial is not None, ET.tostring(root, encoding="unicode")
    return [target.text or "" for target in dial]
