"""`tickets.yaml` beside the flows: the sinks tickets are delivered to, checked with positions.

Secrets (`secret`, `password`, `token`, `api_key`) are only ever `${ENV_VAR}`, so the file can be
committed; any other text value may be or contain `${ENV_VAR}`. Variables are read when a
worker starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ivr.config import E164
from ivr.errors import ConfigError, Problem
from ivr.yamlsource import Path as Where
from ivr.yamlsource import Reader, Source, parse, read_text, suggest_or_list

TICKETS_FILE = "tickets.yaml"
SECRET_KEYS = frozenset({"secret", "password", "token", "api_key"})
SMS_CREDENTIALS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")  # what SmsSink sends with
ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
ENV_IN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # anywhere in a value
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.:-]*[A-Za-z0-9])?$")  # a name, IPv4 or IPv6
SUBDOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")

# type -> (required keys, optional keys)
KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "webhook": (("url", "secret"), ("timeout",)),
    "email": (("host", "from", "to"), ("port", "starttls", "tls", "username", "password")),
    "zendesk": (("email", "token"), ("subdomain", "url")),
    "freshdesk": (("api_key",), ("domain", "url")),
    "sms": (("from",), ("api_url",)),
}
COMMON_KEYS = ("type", "name")


@dataclass(frozen=True)
class SinkSpec:
    """One sink as written: its type, unique name and options (`${VAR}` not yet read)."""

    type: str
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def resolved(self, env: Mapping[str, str]) -> dict[str, Any]:
        """The options with every `${VAR}` read from `env`; an unset one is an error."""
        return {key: _resolve(value, env, self.name, key) for key, value in self.options.items()}


class SinkConfigError(ConfigError):
    """tickets.yaml cannot be used."""


def load_sinks(directory: Path) -> tuple[list[SinkSpec], list[Problem]]:
    """The sinks of `directory/tickets.yaml` (none when it is absent) and its problems."""
    _, sinks, problems = _load(directory)
    return sinks, problems


def check_tickets(directory: Path, env: Mapping[str, str] | None = None) -> list[Problem]:
    """Every problem of `tickets.yaml` in `directory`; unset variables are warnings here."""
    env = os.environ if env is None else env
    source, sinks, problems = _load(directory)
    if source is None or not sinks or any(p.severity == "error" for p in problems):
        return problems
    problems += _environment_problems(source, sinks, env, "warning")
    for index, sink in enumerate(sinks):
        if sink.type == "sms":
            problems += _sms_credentials(source, sink, index, env)
    return problems


def _load(directory: Path) -> tuple[Source | None, list[SinkSpec], list[Problem]]:
    path = directory / TICKETS_FILE
    if not path.exists():
        return None, [], []
    text, problems = read_text(path, "the ticket sinks")
    if text is None:
        return None, [], problems
    source, problems = parse(text, str(path))
    if source is None:
        return None, [], problems
    reader = _Reader(source)
    sinks = reader.document()
    return source, sinks, problems + reader.problems


def sinks_for_worker(directory: Path, env: Mapping[str, str] | None = None) -> list[SinkSpec]:
    """The sinks a worker delivers to; refuses a file with errors or unset variables."""
    env = os.environ if env is None else env
    source, sinks, problems = _load(directory)
    errors = [p for p in problems if p.severity == "error"]
    if not errors and source is not None:
        errors = _environment_problems(source, sinks, env, "error")
    if errors:
        raise SinkConfigError(errors)
    return sinks


def _environment_problems(
    source: Source, sinks: list[SinkSpec], env: Mapping[str, str], unset: str
) -> list[Problem]:
    """Each `${VAR}` that is unset (a problem of severity `unset`), and each value with its
    variables read that the key would refuse written out: it would fail every delivery."""
    problems: list[Problem] = []
    for index, sink in enumerate(sinks):
        for key, value in sink.options.items():
            where: Where = ("sinks", index, key)
            for item in value if isinstance(value, list) else [value]:
                names = _references(item)
                missing = [name for name in names if not env.get(name)]
                for name in missing:
                    message = (
                        f"sink {sink.name!r}: ${{{name}}} is not set in this environment"
                        f" (`{key}` needs it)"
                    )
                    problems.append(source.problem(where, message, unset))
                if not names or missing or key in SECRET_KEYS:
                    continue
                given = _expand(item, env)
                checked: Any = [given] if isinstance(value, list) else given
                if key == "to":  # one variable may hold several addresses
                    checked = [part.strip() for part in given.split(",")]
                reader = _Reader(source)
                reader.value(sink.type, key, checked, where)
                for found in reader.problems:
                    message = f"sink {sink.name!r}: {item} ({given!r}): {found.message}"
                    problems.append(source.problem(where, message))
    return problems


def _sms_credentials(
    source: Source, sink: SinkSpec, index: int, env: Mapping[str, str]
) -> list[Problem]:
    """A warning when the Twilio account an sms sink sends through is not configured: a
    worker refuses to start without it, so `ivr check` says so before a deploy does."""
    missing = [name for name in SMS_CREDENTIALS if not env.get(name)]
    if not missing:
        return []
    names = " and ".join(missing)
    verb = "is" if len(missing) == 1 else "are"
    message = (
        f"sink {sink.name!r}: {names} {verb} not set in this environment"
        " (texts are sent through the Twilio account)"
    )
    return [source.problem(("sinks", index, "type"), message, "warning")]


def _references(value: Any) -> list[str]:
    if isinstance(value, str):
        return ENV_IN.findall(value)
    if isinstance(value, list):
        return [name for item in value for name in _references(item)]
    return []


def _expand(text: str, env: Mapping[str, str]) -> str:
    return ENV_IN.sub(lambda match: env[match.group(1)], text)


def _resolve(value: Any, env: Mapping[str, str], sink: str, key: str) -> Any:
    if isinstance(value, list):
        return [_resolve(item, env, sink, key) for item in value]
    if not isinstance(value, str):
        return value
    for name in _references(value):
        if not env.get(name):
            problem = Problem(TICKETS_FILE, 1, 1, f"sink {sink!r}: {key} needs ${{{name}}}, unset")
            raise SinkConfigError([problem])
    return _expand(value, env)


class _Reader(Reader):
    def hint(self, word: str, choices: Iterable[str]) -> str:
        return suggest_or_list(word, choices)

    def document(self) -> list[SinkSpec]:
        data = self.source.data
        if data is None:
            return []
        if not isinstance(data, dict) or "sinks" not in data:
            self.error((), "expected `sinks:` with a list of ticket sinks")
            return []
        self.unknown_keys(data, (), ("sinks",))
        entries = self.typed(("sinks",), data["sinks"], list, "`sinks` must be a list")
        if entries is None:
            return []
        sinks: list[SinkSpec] = []
        names: set[str] = set()
        for index, body in enumerate(entries):
            sink = self.sink(body, ("sinks", index), len(sinks))
            if sink is None:
                continue
            if sink.name in names:
                self.error(("sinks", index), f"two sinks are named {sink.name!r}: add `name:`")
                continue
            names.add(sink.name)
            sinks.append(sink)
        return sinks

    def sink(self, body: Any, where: Where, index: int) -> SinkSpec | None:
        body = self.typed(where, body, dict, "a sink is a mapping with a `type`")
        if body is None:
            return None
        kind = body.get("type")
        if kind not in KEYS:
            hint = self.hint(kind, KEYS) if isinstance(kind, str) else ""
            if not hint.startswith(";"):
                hint = ""  # the types are listed already
            self.error((*where, "type"), f"sink type must be one of {', '.join(KEYS)}{hint}")
            return None
        required, optional = KEYS[kind]
        allowed = (*COMMON_KEYS, *required, *optional)
        before = len(self.problems)
        self.unknown_keys(body, where, allowed, f" for a {kind} sink")
        for key in required:
            if key not in body:
                self.error(where, f"a {kind} sink needs `{key}`")
        name = body.get("name", kind)
        if not isinstance(name, str) or not NAME.match(name):
            self.error((*where, "name"), "a sink name is lower-case letters, digits, - and _")
        options = {k: v for k, v in body.items() if k not in COMMON_KEYS}
        for key, value in options.items():
            if key in allowed:  # an unknown key is said once, above
                self.value(kind, key, value, (*where, key))
        if kind == "email":
            if options.get("tls") is True and options.get("starttls") is True:
                self.error(
                    where, "an email sink takes `tls` (port 465) or `starttls` (port 587), not both"
                )
            if ("username" in options) != ("password" in options):
                self.error(
                    where, "an email sink's `username` needs a `password` (and the other way round)"
                )
        if kind in ("zendesk", "freshdesk"):
            place = "subdomain" if kind == "zendesk" else "domain"
            if (place in options) == ("url" in options):
                self.error(where, f"a {kind} sink needs either `{place}` or `url`")
        if len(self.problems) > before:
            return None
        return SinkSpec(kind, str(name), options)

    def value(self, kind: str, key: str, value: Any, where: Where) -> None:
        if key in SECRET_KEYS:
            if not isinstance(value, str) or not ENV_REF.match(value):
                self.error(where, f"`{key}` must be given as ${{ENV_VAR}}, never written here")
            return
        if key in ("starttls", "tls"):
            self.typed(where, value, bool, f"`{key}` is true or false")
            return
        if key == "port":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 65535:
                self.error(where, "`port` must be a whole number from 1 to 65535")
            return
        if key == "timeout":
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value <= 300
            ):
                self.error(where, "`timeout` must be a number of seconds above 0, at most 300")
            return
        if key == "to" and kind == "email":
            items = value if isinstance(value, list) else [value]
            if not items or not all(isinstance(i, str) and _email_ok(i) for i in items):
                self.error(where, "`to` is a list of e-mail addresses")
            return
        if not isinstance(value, str) or not value:
            self.error(where, f"`{key}` must be text")
            return
        if ENV_IN.search(value):
            return  # checked once its variables are read
        if key in ("url", "api_url") and not value.startswith(("https://", "http://")):
            self.error(where, f"`{key}` must be an http(s) URL")
        elif key in ("url", "api_url") and not _has_host(value):
            self.error(where, f"`{key}` must be an http(s) URL with a host")
        elif key == "host" and not HOST.match(value):
            self.error(where, "`host` must be a host name or address, like smtp.example.com")
        elif key == "subdomain" and not SUBDOMAIN.match(value):
            message = "`subdomain` is the name before .zendesk.com, like example (or give `url`)"
            self.error(where, message)
        elif key == "domain" and not (HOST.match(value) and "." in value):
            message = "`domain` must be a host name, like example.freshdesk.com (or give `url`)"
            self.error(where, message)
        elif key in ("email", "from") and kind != "sms" and not _email_ok(value):
            self.error(where, f"`{key}` must be an e-mail address")
        elif key == "from" and kind == "sms" and not E164.match(value):
            self.error(where, '`from` must be an E.164 number, quoted: "+15005550006"')


def _has_host(url: str) -> bool:
    try:
        return bool(HOST.match(urlsplit(url).hostname or ""))
    except ValueError:
        return False


def _email_ok(value: str) -> bool:
    return bool(ENV_IN.search(value) or EMAIL.match(value))
