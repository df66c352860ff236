"""`ivr simulate`: place a call through the real app and print what the caller hears."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import click

from ivr.commands.check import check_directory
from ivr.commands.scenario import read_scenario
from ivr.errors import IvrError
from ivr.settings import Settings
from ivr.simulate import Heard, InProcess, Input, OverHttp, SimulatedCall, Transport, place_call
from ivr.voice.security import SignatureChecker

KEYS = re.compile(r"[0-9*#]+$")


@dataclass
class Script:
    """The caller's moves, in order; each prompt takes the next move that fits it."""

    moves: list[Any] = field(default_factory=list)

    def answer(self, heard: Heard) -> Input:
        """The input for the prompt just heard."""
        if heard.kind == "gather":
            move = self._take(lambda m: isinstance(m, str) or _has(m, "press", "say", "silence"))
            if isinstance(move, str):
                text = move.strip()
                if text in ("", "-"):
                    return Input()
                return Input(press=text) if KEYS.match(text) else Input(say=text)
            move = move or {}
            return Input(press=str(move.get("press", "")), say=str(move.get("say", "")))
        if heard.kind == "dial":
            move = self._take(lambda m: _has(m, "dial")) or {}
            return Input(dial=str(move.get("dial", "no-answer")))
        if heard.kind == "record":
            move = self._take(lambda m: _has(m, "record")) or {}
            return Input(record_seconds=int(move.get("record", 5)))
        if heard.kind == "enqueue":
            move = self._take(lambda m: _has(m, "queue")) or {}
            return Input(queue=str(move.get("queue", "leave")))
        return Input()

    def _take(self, fits: Any) -> Any:
        if self.moves and fits(self.moves[0]):
            return self.moves.pop(0)
        return None


def _has(move: Any, *keys: str) -> bool:
    return isinstance(move, dict) and any(k in move for k in keys)


def _ask(heard: Heard) -> Input:
    if heard.kind == "gather":
        text = click.prompt("  keys or words (Enter = silence)", default="", show_default=False)
        return Script([text]).answer(heard)
    if heard.kind == "dial":
        status = click.prompt(
            "  the agent",
            default="no-answer",
            type=click.Choice(["answered", "no-answer", "busy", "failed"]),
        )
        return Input(dial="completed" if status == "answered" else status)
    if heard.kind == "record":
        return Input(record_seconds=click.prompt("  seconds of message", default=5, type=int))
    return Input()


class RecordUnavailable(Exception):
    """The call's record could not be read; the words say why and what to do."""


class CallRecord(Protocol):
    def steps_and_outcome(self, sid: str) -> tuple[list[str], str]:
        """The steps a call went through, in order, and its outcome; or RecordUnavailable."""


@dataclass(frozen=True)
class StoredRecord:
    """The record in the app's own Redis (in-process calls)."""

    store: Any

    def steps_and_outcome(self, sid: str) -> tuple[list[str], str]:
        """Read from the call's timeline and summary."""
        entries = self.store.call_log(sid)
        summary = self.store.summary(sid)
        return _steps(entries), summary.outcome if summary else "in_progress"


@dataclass(frozen=True)
class ServerRecord:
    """The record as the server's calls API gives it (`--url`), with the API token."""

    transport: OverHttp
    token: str

    def steps_and_outcome(self, sid: str) -> tuple[list[str], str]:
        """`GET /api/calls/<sid>`: its events and outcome."""
        try:
            status, body = self.transport.get(f"/api/calls/{sid}", self.token)
        except OSError as exc:
            raise RecordUnavailable(f"the server's record of the call did not come: {exc}") from exc
        if status == 401:
            raise RecordUnavailable(
                "the server refused the API token: set IVR_API_TOKEN to the server's (in "
                "development mode the one in var/dev-api-token of its data dir)"
            )
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if status != 200 or not isinstance(data, dict):
            error = data.get("error") if isinstance(data, dict) else body[:200].strip()
            raise RecordUnavailable(f"the server answered {status} for the call's record: {error}")
        return _steps(data.get("events") or []), str(data.get("outcome"))


def _steps(events: list[Any]) -> list[str]:
    return [str(e["step"]) for e in events if isinstance(e, dict) and e.get("kind") == "step"]


def _server_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port out of range
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise click.BadParameter(f"{value!r} is not a server's URL such as http://127.0.0.1:8000")
    return value


@contextmanager
def _transport(settings: Settings, url: str | None) -> Iterator[tuple[Transport, CallRecord]]:
    """The way to the app: over HTTP to `url` (its record through the calls API), else the app
    built here around the same Redis."""
    if url:
        server = OverHttp(url.rstrip("/"))
        yield server, ServerRecord(server, settings.api_token or "")
        return
    from ivr.app import create_app
    from ivr.embedded import ensure_redis

    _, problems = check_directory(settings.flows_dir)
    errors = [problem for problem in problems if problem.severity == "error"]
    if errors:
        click.echo("\n".join(str(problem) for problem in errors), err=True)
        raise click.ClickException(f"the call flows in {settings.flows_dir} do not load")
    with ensure_redis(settings) as ready:
        app = create_app(ready)
        # Signed for the URL the app checks: IVR_PUBLIC_URL + path when it is set.
        in_process = InProcess(app.test_client(), settings.public_url or InProcess.base)
        yield in_process, StoredRecord(app.extensions["ivr"].store)


@click.command()
@click.option("--to", "called", default="+15005550006", show_default=True, help="Number called.")
@click.option(
    "--from", "caller", default="+15551230000", show_default=True, help="Caller's number."
)
@click.option("--country", default="US", show_default=True, help="Caller's country (FromCountry).")
@click.option(
    "--press",
    "--say",
    "moves",
    multiple=True,
    help="The caller's next move, in order: keys (e.g. 2) or words; '-' is silence.",
)
@click.option(
    "--answer",
    "dial_status",
    flag_value="completed",
    default=None,
    help="Agents answer (by default nobody does).",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Run the calls of a scenario file and check what they expect.",
)
@click.option(
    "--url",
    default=None,
    callback=_server_url,
    help="Call a running server instead of the app in-process.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def simulate(
    called: str,
    caller: str,
    country: str,
    moves: tuple[str, ...],
    dial_status: str | None,
    scenarios: tuple[str, ...],
    url: str | None,
    as_json: bool,
) -> None:
    """Place a simulated call and print what the caller hears."""
    # A simulated call is local: the dev token serves when no real one is configured.
    settings = Settings.from_env().with_(dev=True)
    try:
        settings = settings.require_auth_token()
    except IvrError as exc:
        raise click.ClickException(str(exc)) from exc
    checker = SignatureChecker(settings.auth_token or "", None)
    try:
        _place(
            settings, checker, called, caller, country, moves, dial_status, scenarios, url, as_json
        )
    except OSError as exc:
        if url is None:
            raise
        # URLError, refused connections and timeouts: the server is not there (yet).
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise click.ClickException(
            f"cannot reach the server at {url}: {reason} (is `ivr serve` running there?)"
        ) from exc


def _place(
    settings: Settings,
    checker: SignatureChecker,
    called: str,
    caller: str,
    country: str,
    moves: tuple[str, ...],
    dial_status: str | None,
    scenarios: tuple[str, ...],
    url: str | None,
    as_json: bool,
) -> None:
    """Place the call (or run the scenarios) and print what was heard."""
    with _transport(settings, url) as (transport, record):
        if scenarios:
            failures = sum(
                _run_scenario(Path(p), transport, checker, record, as_json) for p in scenarios
            )
            if failures:
                raise SystemExit(1)
            return
        interactive = not moves and sys.stdin.isatty() and not as_json
        script = Script(list(moves) + ([{"dial": dial_status}] * 20 if dial_status else []))
        echo = (lambda heard: click.echo(str(heard))) if not as_json else (lambda heard: None)
        call = place_call(
            transport,
            checker,
            _ask if interactive else script.answer,
            caller,
            called,
            country,
            on_heard=echo,
        )
        summary = _summary(call, record)
        if as_json:
            click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        elif "record_error" in summary and not call.refused():
            click.echo(f"steps: not shown: {summary['record_error']}", err=True)
        elif summary.get("steps"):
            click.echo(f"steps: {' > '.join(summary['steps'])}; outcome: {summary['outcome']}")
        _fail_unless_served(call, url)


def _fail_unless_served(call: SimulatedCall, url: str | None = None) -> None:
    """Exit 1 when the app refused the call's signature, answered what Twilio cannot play, or
    the call ended in the fallback."""
    if call.refused():
        where = (
            "; a server with IVR_PUBLIC_URL checks signatures against that URL: use it as --url"
            if url
            else ""
        )
        raise click.ClickException(
            "the server refused the signature (HTTP 403): set TWILIO_AUTH_TOKEN to the "
            "server's token (in development mode the one in var/dev-auth-token of its data dir)"
            + where
        )
    error = call.application_error()
    if error is not None:
        raise click.ClickException(f"a webhook answered {error}")
    if call.fell_back():
        raise click.ClickException(
            "the call ended in the fallback (an apology): see the server's log for why"
        )


def _summary(call: SimulatedCall, record: CallRecord) -> dict[str, Any]:
    """What the caller heard, and the steps and outcome of the call's record (or why not)."""
    summary: dict[str, Any] = {"sid": call.sid, "heard": [vars(h) for h in call.heard]}
    if call.refused():  # never let in: the server has no record of it
        summary["record_error"] = "the server refused the call's signature (HTTP 403)"
        return summary
    try:
        summary["steps"], summary["outcome"] = record.steps_and_outcome(call.sid)
    except RecordUnavailable as exc:
        summary["record_error"] = str(exc)
    return summary


def _run_scenario(
    path: Path, transport: Transport, checker: SignatureChecker, record: CallRecord, as_json: bool
) -> int:
    """Run every call of a scenario file; the number of calls that did not go as expected."""
    calls, problems = read_scenario(path)
    if problems:
        # Nothing is run from a file with a mistake: a move misread would test something else.
        raise click.ClickException("\n".join(map(str, problems)))
    failures = 0
    for spec in calls:
        name = spec.name
        call = place_call(
            transport,
            checker,
            Script(list(spec.moves)).answer,
            spec.caller,
            spec.called,
            spec.country,
        )
        summary = _summary(call, record)
        wrong = check_expectations(spec.expect, summary, call.texts())
        error = call.application_error()
        if error is not None:  # whatever else held, the caller heard Twilio's error
            wrong.insert(0, f"a webhook answered {error}")
        failures += bool(wrong)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "scenario": str(path),
                        "call": name,
                        "ok": not wrong,
                        "problems": wrong,
                        **summary,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            click.echo(f"{'ok  ' if not wrong else 'FAIL'} {path}: {name}")
            for problem in wrong:
                click.echo(f"     {problem}")
    return failures


def check_expectations(
    expect: dict[str, Any], summary: dict[str, Any], said: list[str]
) -> list[str]:
    """What did not go as the scenario expects (steps in order, words heard in order, outcome)."""
    wrong: list[str] = []
    if "record_error" in summary and ("steps" in expect or "outcome" in expect):
        return [f"steps and outcome not checked: {summary['record_error']}"]
    if "steps" in expect and not _in_order(list(map(str, expect["steps"])), summary["steps"]):
        wrong.append(f"steps {expect['steps']} not reached in order; reached {summary['steps']}")
    for_words = [str(w) for w in expect.get("hears", [])]
    if not _in_order(for_words, said, contains=True):
        wrong.append(f"did not hear {for_words} in order; heard {said}")
    if "outcome" in expect and expect["outcome"] != summary["outcome"]:
        wrong.append(f"outcome {summary['outcome']!r}, expected {expect['outcome']!r}")
    return wrong


def _in_order(wanted: list[str], got: list[str], contains: bool = False) -> bool:
    position = 0
    for item in wanted:
        while position < len(got) and not (
            item in got[position] if contains else item == got[position]
        ):
            position += 1
        if position == len(got):
            return False
        position += 1
    return True


COMMANDS = [simulate]
