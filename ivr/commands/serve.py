"""`ivr serve`: the app under gunicorn, with the embedded Redis when no REDIS_URL is given."""

from __future__ import annotations

import errno
import gc
import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

# Imported here, before any worker can exit: first imported inside gunicorn's SIGCHLD handler,
# the import can be interrupted by the next worker's SIGCHLD, re-entered, and fail half-way.
from prometheus_client import multiprocess, values

from ivr import hostcalls
from ivr.commands.check import check_directory
from ivr.embedded import EmbeddedRedis
from ivr.errors import IvrError, StoreUnavailable
from ivr.flows.registry import build_flowset
from ivr.settings import Settings
from ivr.store import Store, connect

log = logging.getLogger(__name__)

SAMPLE_NUMBER = "+15005550006"


def gunicorn_options(
    host: str, port: int, workers: int, threads: int = 4, trust_proxy: bool = False
) -> dict[str, Any]:
    """The gunicorn settings of `ivr serve` (the benchmark uses the same ones)."""
    forwarded: dict[str, Any] = {}
    if not trust_proxy:
        # gunicorn believes X-Forwarded-Proto from 127.0.0.1 by default, which would change the
        # URL signatures are checked against; forwarded headers count only with IVR_TRUST_PROXY
        # (and then through the app's ProxyFix).
        forwarded = {"forwarded_allow_ips": "", "secure_scheme_headers": {}}
    return {
        "bind": address(host, port),
        "workers": workers,
        "worker_class": "ivr.gthread.DrainingThreadWorker",
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "preload_app": False,  # each worker opens its own Redis connections after the fork
        "child_exit": _forget_worker_metrics,
        **forwarded,
    }


def address(host: str, port: int) -> str:
    """host:port as gunicorn binds it and a URL names it: an IPv6 address in brackets."""
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _count_across_workers(directory: Path) -> None:
    """Have every worker keep its metrics in `directory`, for /metrics to add them up."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    # prometheus_client chose how metrics keep their values when it was imported (above, before
    # the variable was set): in memory, so each worker's /metrics read an empty directory and
    # showed no call at all. Choose again, before any metric exists (the workers create them).
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def _forget_worker_metrics(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """A gunicorn application whose workers each build the app from a factory."""

    def __init__(self, factory: Any, options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        app: Flask = self.factory()
        return app


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the webhooks under gunicorn (starting the embedded Redis if REDIS_URL is unset)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.from_env()
    _prepare_data_dir(settings.data_dir)
    try:
        settings = settings.require_auth_token()
    except IvrError as exc:
        raise click.ClickException(str(exc)) from exc
    host = host.strip("[]")  # --host [::1] as in a URL
    _refuse_a_taken_address(host, port)
    with ExitStack() as stack:
        if not settings.redis_url:
            embedded = stack.enter_context(EmbeddedRedis(settings.data_dir))
            settings = settings.with_(redis_url=embedded.url)
            click.echo(f"embedded Redis for {embedded.data_dir}: {embedded.url}", err=True)
        # Workers and tools started from here see the same Redis and token.
        os.environ["REDIS_URL"] = settings.redis_url or ""
        metrics_dir = _fresh_metrics_dir(settings)
        # Gone with the server: each start has its own, and a data dir kept one per start.
        stack.callback(shutil.rmtree, metrics_dir, ignore_errors=True)
        _count_across_workers(metrics_dir)
        settings = settings.with_(housekeeping=True)
        fallback = _starting_version(settings)
        _greet(settings, host, port)
        if settings.dev:
            stack.enter_context(_ticket_worker())
        options = gunicorn_options(host, port, workers, threads, settings.trust_proxy)
        hostcalls.share()  # mapped before the workers fork, so that they all see it
        master = os.getpid()
        try:
            GunicornServer(lambda: build_app(settings, fallback), options).run()
        except SystemExit as exit_:
            if os.getpid() != master:
                _leave_worker(exit_)
            if exit_.code not in (0, None):
                raise


def _refuse_a_taken_address(host: str, port: int) -> None:
    """Stop before anything starts when the address cannot be listened on: gunicorn would only
    retry it for five seconds after the greeting had offered a server that is not this one."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
            probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = " (another server holds it): stop it, or choose another --port (make run PORT=N)"
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}{hint}") from None


def _prepare_data_dir(data_dir: Path) -> None:
    """Create IVR_DATA_DIR, or refuse to start with the reason (not a traceback)."""
    if data_dir.exists() and not data_dir.is_dir():
        raise click.ClickException(f"IVR_DATA_DIR {data_dir}: not a directory")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(
            f"IVR_DATA_DIR {data_dir}: cannot create it ({exc.strerror or exc})"
        ) from exc
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise click.ClickException(f"IVR_DATA_DIR {data_dir}: not writable by this user")


def build_app(settings: Settings, fallback: str | None = None) -> Flask:
    """A worker's app: it marks each good flow version in Redis, and starts from `fallback`
    (a version kept there) when the files do not load."""
    from ivr.app import create_app
    from ivr.services import Services

    app = create_app(settings)
    services: Services = app.extensions["ivr"]
    services.registry.keep_good_versions(services.store.mark_good_flowset)
    if fallback is not None:
        services.registry.fall_back_to(fallback)
    # What the worker has built so far (modules, flows, pools, holiday calendars) lives as long
    # as it does: out of the cyclic collector's reach, a full collection no longer walks it,
    # which held the webhook that set it off for about 70 ms.
    gc.freeze()
    return app


def _starting_version(settings: Settings) -> str | None:
    """None when the flow files load; else the last good version kept in Redis, or refuse."""
    _, problems = check_directory(settings.flows_dir)
    errors = [problem for problem in problems if problem.severity == "error"]
    if not errors:
        return None
    found = None
    try:
        connection = connect(settings)
        try:
            store = Store(connection)
            version = store.good_flowset_version()
            texts = store.load_flowset(version) if version else None
        finally:
            connection.close()
        if texts is not None:
            flowset, _ = build_flowset(texts, settings.flows_dir)
            found = flowset.version if flowset else None
    except StoreUnavailable as exc:
        log.error("no last good flow version: %s", exc)
    listing = "\n".join(str(problem) for problem in errors)
    if found is None:
        click.echo(listing, err=True)
        raise click.ClickException(
            f"the call flows in {settings.flows_dir} do not load and Redis keeps no good "
            "version to start from: fix the errors above (`ivr check`) and start again"
        )
    # Loud on purpose: calls are served, but from a version that is not on disk.
    log.error(
        "THE CALL FLOWS IN %s DO NOT LOAD; serving the last good version %s kept in Redis "
        "until they are fixed:\n%s",
        settings.flows_dir,
        found,
        listing,
    )
    return found


def _leave_worker(exit_: SystemExit) -> NoReturn:
    """End a gunicorn worker where it stands. Its exit unwinds the stack it was forked from; left
    to unwind, it would run the master's clean-up and stop the embedded Redis (and the ticket
    worker) under the master and the other workers, as each worker replaced by a reload leaves."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_.code if isinstance(exit_.code, int) else 1)


@contextmanager
def _ticket_worker() -> Iterator[None]:
    """In development mode one `ivr worker` delivers tickets beside the server, so that
    `make run` needs no second command; production runs it from the Procfile's worker line."""
    worker = subprocess.Popen([sys.executable, "-m", "ivr", "worker"], stdin=subprocess.DEVNULL)
    click.echo(f"development mode: ticket worker started (pid {worker.pid})", err=True)
    try:
        yield
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()


def _fresh_metrics_dir(settings: Settings) -> Path:
    """An empty folder for the workers' metric files: counts start again with the server."""
    folder = settings.data_dir / f"metrics-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _greet(settings: Settings, host: str, port: int) -> None:
    base = f"http://{address(host, port)}"
    lines = [f"serving call flows from {settings.flows_dir} on {base}"]
    if settings.dev and not os.environ.get("TWILIO_AUTH_TOKEN"):
        lines += [
            f"development mode: webhooks must be signed with the dev token {settings.auth_token}",
            f"  (kept in {settings.data_dir / 'dev-auth-token'})",
        ]
    if settings.dev:
        from ivr.dashboard import DEV_PASSWORD_FILE, dev_login

        name, password = dev_login(settings)
        lines += [
            f"dashboard: {base}/dashboard, log in as {name} with the password {password}",
            f"  (kept in {settings.data_dir / DEV_PASSWORD_FILE})",
        ]
    lines += [
        "place a simulated call through this server, in another terminal:",
        f"  .venv/bin/ivr simulate --url {base} --to {SAMPLE_NUMBER} --press 2 --press 1",
        "or interactively (type keys or words at each prompt):",
        f"  .venv/bin/ivr simulate --url {base}",
    ]
    click.echo("\n".join(lines), err=True)
    sys.stderr.flush()


COMMANDS = [serve]
