"""gunicorn's threaded worker, made to drain its connections on a graceful stop, to close a
kept-alive connection after a number of answers, so that connections spread over the workers,
to hand the interpreter lock between its threads sooner than Python's default, to send an
answer's headers and body in one write, and to format the Date header once a second.

gunicorn 23's gthread worker, told to stop (SIGTERM: each old worker on `kill -HUP`, every worker on
a graceful shutdown), leaves its event loop at once and exits when the requests its threads hold
are done. The connections it accepted but had not read yet, and those kept alive between two
requests, are closed unread as the process exits: a request already sent on one of them gets a
reset instead of an answer, and a client that was sent a keep-alive answer just before the signal
may send its next request on a socket about to close. This worker stops accepting, then goes on
serving whatever arrives on the connections it has, each answer with `Connection: close`, and closes
an idle kept-alive connection only when its keep-alive time runs out, as it would have anyway.

It builds on gunicorn 23's internals (hence the `<24` pin). gunicorn 24 drains on its own, but still
closes at once a connection whose keep-alive answer went out just before the stop.
"""

from __future__ import annotations

import selectors
import sys
import time
from concurrent import futures
from email.utils import formatdate
from functools import lru_cache, partial
from typing import Any

import gunicorn.util
from gunicorn.http import wsgi
from gunicorn.workers.gthread import ThreadWorker

HEARTBEAT_SECONDS = 1.0  # how often a worker tells the master it is alive, at most
# Answers on one kept-alive connection, after which it closes (its last answer says so) and the
# client connects again. A connection stays with the worker that accepted it, and the workers'
# race for new ones is won by the same one while they are all idle: a client that opened its
# connections at once (a reverse proxy's upstream pool, say) could keep one worker's core busy
# and the other's idle. A busy worker loses that race, so connections made again go where the
# CPU is.
REQUESTS_PER_CONNECTION = 25
# How long a thread may keep the interpreter lock while another waits for it (Python's default is
# 5 ms). A webhook runs 0.3-0.5 ms of Python between two waits on a socket; under load the thread
# whose Redis answer just came back, or the loop that hands out a new request, waited for another
# webhook's turn to end, up to 5 ms at each hand-over: in four interleaved pairs of runs at a
# steady 1,000 webhooks a second, the p99 was 8-23 ms with 0.5 ms against 15-98 ms with 5 ms.
SWITCH_INTERVAL = 0.0005


@lru_cache(maxsize=4)
def _date_of(second: int) -> str:
    return formatdate(second, usegmt=True)


def http_date(timestamp: float | None = None) -> str:
    """gunicorn's `util.http_date`, made once a second: each answer formatted its Date header
    afresh, 3.3 us of CPU against 0.25 us for the cached line."""
    if timestamp is not None:
        return formatdate(timestamp, usegmt=True)
    return _date_of(int(time.time()))


class OneWriteResponse(wsgi.Response):  # type: ignore[misc]
    """gunicorn's response, except that the headers go out in the same write as the first piece
    of the body (a webhook's whole answer) instead of a write of their own.

    On loopback or a LAN each write is a segment the kernel delivers, waking the reader, inside
    the writer's system call: gunicorn's headers-then-body cost a worker two of them per answer,
    and the client two wake-ups.
    """

    headers_sent: bool  # gunicorn's own, set in its __init__

    def header_bytes(self) -> bytes:
        """The status line and headers, as gunicorn's `send_headers` writes them."""
        lines = self.default_headers()
        lines.extend([f"{name}: {value}\r\n" for name, value in self.headers])
        return "".join(lines).encode("latin-1") + b"\r\n"

    def write(self, arg: bytes) -> None:
        if (
            self.headers_sent
            or self.chunked
            or not isinstance(arg, bytes)
            or (self.response_length is not None and len(arg) > self.response_length)
        ):
            super().write(arg)  # gunicorn's checks and truncation, chunked encoding
            return
        head = self.header_bytes()
        self.headers_sent = True
        self.sent += len(arg)
        self.sock.sendall(head + arg)


class DrainingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """A gthread worker that, told to stop, serves its open connections out before leaving."""

    _beat = float("-inf")

    def notify(self) -> None:
        """Tell the master this worker is alive, at most once a second: gunicorn's loop does it
        on every pass, a file-time syscall per request or so, against a timeout of many seconds."""
        now = time.monotonic()
        if now - self._beat >= HEARTBEAT_SECONDS:
            self._beat = now
            super().notify()

    def init_process(self) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL)
        # gunicorn builds each answer's Response in `wsgi.create`; only this worker's own
        # process (forked, about to serve) is given the one-write kind.
        wsgi.Response = OneWriteResponse
        gunicorn.util.http_date = http_date  # the Date line of gunicorn's default headers
        super().init_process()

    def run(self) -> None:
        """gunicorn 23's loop, then a drain instead of dropping the open connections."""
        for listener in self.sockets:
            listener.setblocking(False)
            server = listener.getsockname()
            self.poller.register(listener, selectors.EVENT_READ, partial(self.accept, server))
        while self.alive:
            self.notify()
            self._turn(1.0)
            if not self.is_parent_alive():
                break
            self.murder_keepalived()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        self._drain(deadline)
        # The poller closes only once no thread can hand a connection back to it.
        futures.wait(self.futures, timeout=max(0.0, deadline - time.monotonic()))
        self.tpool.shutdown(False)
        self.poller.close()
        for listener in self.sockets:
            listener.close()

    def _turn(self, timeout: float) -> None:
        """One pass of the event loop: dispatch what is ready, forget finished requests."""
        if self.nr_conns < self.worker_connections:
            for key, _ in self.poller.select(timeout):
                key.data(key.fileobj)
            done = futures.wait(self.futures, timeout=0, return_when=futures.FIRST_COMPLETED)
        else:
            done = futures.wait(self.futures, timeout=timeout, return_when=futures.FIRST_COMPLETED)
        for future in done.done:
            self.futures.remove(future)

    def _drain(self, deadline: float) -> None:
        """Serve what the open connections still bring, until none is left or the deadline."""
        for listener in self.sockets:
            # The listening socket stays open in the master and the other workers, so connections
            # waiting in its backlog go to them.
            self.poller.unregister(listener)
        while self.nr_conns > 0 and time.monotonic() < deadline and self.is_parent_alive():
            self.notify()
            self._turn(0.05)
            self.murder_keepalived()  # an idle connection closes when its keep-alive runs out

    def handle_request(self, req: Any, conn: Any) -> bool:
        """gunicorn's, except that the connection's last allowed answer closes it."""
        conn.answered = getattr(conn, "answered", 0) + 1
        if conn.answered >= REQUESTS_PER_CONNECTION:
            req.force_close()
        return bool(super().handle_request(req, conn))

    def finish_request(self, fs: futures.Future[Any]) -> None:
        """As gunicorn's, except that a connection answered with keep-alive goes back to the
        poller even after the stop began: the client may already be sending on it, and its next
        answer says `Connection: close`."""
        if fs.cancelled():
            self.nr_conns -= 1
            fs.conn.close()  # type: ignore[attr-defined]
            return
        try:
            keepalive, conn = fs.result()
            if not keepalive:
                self.nr_conns -= 1
                conn.close()
                return
            conn.sock.setblocking(False)
            conn.set_timeout()
            with self._lock:
                self._keep.append(conn)
                readable = partial(self.on_client_socket_readable, conn)
                self.poller.register(conn.sock, selectors.EVENT_READ, readable)
        except Exception:
            self.nr_conns -= 1
            fs.conn.close()  # type: ignore[attr-defined]
