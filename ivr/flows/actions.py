"""Reading each kind of step action (say, menu, branch, ...) into its model value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ivr.config import canonical_language
from ivr.flows import model as m
from ivr.flows.reader import (
    CALLER_PREFIX,
    COUNTRY,
    FINISH_KEYS,
    LANGUAGE_CODE,
    OPTION_KEY,
    VARIABLE,
    Reader,
)
from ivr.yamlsource import Path as YamlPath

MENU_KEYS: tuple[str, ...] = ("prompt", "options", "speech", "num_digits", "timeout")
MENU_KEYS += ("finish_on_key", "attempts", "no_input", "invalid", "otherwise", "min_confidence")
CASE_KEYS = ("caller_prefix", "from_country", "language", "vars", "next")


def _say(reader: Reader, where: YamlPath, value: Any) -> m.Action | None:
    prompt = reader.prompt(where, value, "say")
    return m.Say(prompt) if prompt else None


def _play(reader: Reader, where: YamlPath, value: Any) -> m.Action | None:
    url, loop, url_at = value, 1, where
    if isinstance(value, dict):
        reader.mapping(where, value, "play", ("url", "loop"), ("url",))
        url, url_at = value.get("url"), (*where, "url")
        loop = reader.whole((*where, "loop"), value.get("loop", 1), "loop", 1, 100) or 1
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        reader.error(url_at, f"play needs an http(s) URL of the audio, not {url!r}")
        return None
    return m.Play(str(url), loop)


def _pause(reader: Reader, where: YamlPath, value: Any) -> m.Action | None:
    seconds = reader.whole(where, value, "pause (seconds)", 1, 600)
    return m.Pause(seconds) if seconds else None


def _switch_language(reader: Reader, where: YamlPath, value: Any) -> m.Action | None:
    code = reader.language(where, value)
    return m.SwitchLanguage(code) if code else None


def _set(reader: Reader, where: YamlPath, value: Any) -> m.Action | None:
    if not isinstance(value, dict) or not value:
        reader.error(where, "set must be a map of variable name to value")
        return None
    values = {name: _variable(reader, (*where, name), name, item) for name, item in value.items()}
    if any(item is None for item in values.values()):
        return None
    return m.SetVars({name: str(item) for name, item in values.items()})


def _variable(reader: Reader, where: YamlPath, name: str, value: Any) -> str | None:
    if not VARIABLE.match(name):
        reader.error(where, f"variable name {name!r} must be letters, digits and '_'")
    return _scalar(reader, where, value, f"variable {name!r}")


def _scalar(reader: Reader, where: YamlPath, value: Any, what: str) -> str | None:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    reader.error(where, f"{what} must be text or a number (quote true, false and empty values)")
    return None


def _menu(reader: Reader, where: YamlPath, value: Any) -> m.Action | None:
    data = reader.mapping(where, value, "menu", MENU_KEYS, ("prompt", "options"))
    if data is None:
        return None
    prompt = reader.prompt((*where, "prompt"), data.get("prompt"), "menu prompt")
    options = _options(reader, (*where, "options"), data.get("options"))
    speech = reader.flag((*where, "speech"), data.get("speech", False), "speech")
    num_digits = data.get("num_digits")
    if num_digits is not None:
        num_digits = reader.whole((*where, "num_digits"), num_digits, "num_digits", 1, 32)
    if num_digits and options:
        for option in options:
            if len(option.key) != num_digits:
                reader.error(
                    (*where, "options", option.key),
                    f"option {option.key!r} can never be pressed: the menu takes "
                    f"exactly {num_digits} key(s) (num_digits)",
                )
    finish_on_key = _finish_key(reader, (*where, "finish_on_key"), data)
    for option in options or ():
        if finish_on_key and finish_on_key in option.key:
            reader.error(
                (*where, "options", option.key),
                f"option {option.key!r} can never be pressed: {finish_on_key} ends the input "
                "(finish_on_key)",
            )
    if not speech and any(option.keywords for option in options or ()):
        reader.error((*where, "speech"), "keywords are only heard with speech: true", "warning")
    timeout = reader.whole((*where, "timeout"), data.get("timeout", 5), "timeout", 1, 60)
    attempts = reader.whole((*where, "attempts"), data.get("attempts", 3), "attempts", 1, 10)
    min_confidence = _confidence(reader, (*where, "min_confidence"), data)
    no_input, invalid = (
        reader.prompt((*where, key), data[key], key.replace("_", " ")) if key in data else None
        for key in ("no_input", "invalid")
    )
    otherwise = data.get("otherwise")
    if otherwise is not None:
        otherwise = reader.name((*where, "otherwise"), otherwise, "otherwise")
    if prompt is None or options is None:
        return None
    return m.Menu(
        prompt=prompt,
        options=options,
        speech=bool(speech),
        num_digits=num_digits,
        timeout=timeout or 5,
        finish_on_key="#" if finish_on_key is None else finish_on_key,
        attempts=attempts or 3,
        no_input=no_input,
        invalid=invalid,
        otherwise=otherwise,
        min_confidence=0.4 if min_confidence is None else min_confidence,
    )


def _confidence(reader: Reader, where: YamlPath, data: dict[str, Any]) -> float | None:
    value = data.get("min_confidence", 0.4)
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    reader.error(where, "min_confidence must be a number from 0 to 1")
    return None


def _finish_key(reader: Reader, where: YamlPath, data: dict[str, Any]) -> str | None:
    value = data.get("finish_on_key", "#")
    if value is None or value == "":
        return ""  # no finishing key: the menu waits for num_digits or the timeout
    key = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    if key in FINISH_KEYS:
        return key
    reader.error(where, f'finish_on_key must be one of 0-9, * or #, or "" for none, not {value!r}')
    return None


def _options(reader: Reader, where: YamlPath, value: Any) -> tuple[m.Option, ...] | None:
    if not isinstance(value, dict) or not value:
        reader.error(
            where, "options must be a map of key pressed to step (or to {next, language, keywords})"
        )
        return None
    options = [_option(reader, (*where, key), key, body) for key, body in value.items()]
    found = tuple(option for option in options if option is not None)
    return found if len(found) == len(options) else None


def _option(reader: Reader, where: YamlPath, key: str, value: Any) -> m.Option | None:
    if not OPTION_KEY.match(key):
        reader.error(where, f"option key {key!r} must be digits, '*' or '#' (quote '*' and '#')")
        return None
    if isinstance(value, str):
        target = reader.name(where, value, f"option {key!r}")
        return m.Option(key, target) if target else None
    data = reader.mapping(where, value, f"option {key!r}", ("next", "language", "keywords"))
    if data is None:
        return None
    target = data.get("next")
    if target is not None:
        target = reader.name((*where, "next"), target, "next")
    language = data.get("language")
    if language is not None:
        language = reader.language((*where, "language"), language)
    keywords = (
        _keywords(reader, (*where, "keywords"), data["keywords"]) if "keywords" in data else {}
    )
    if (target is None and "next" in data) or (language is None and "language" in data):
        return None
    return m.Option(key, target, language, keywords)


def _keywords(reader: Reader, where: YamlPath, value: Any) -> dict[str, tuple[str, ...]]:
    by_language = value if isinstance(value, dict) else {m.ANY_LANGUAGE: value}
    found: dict[str, tuple[str, ...]] = {}
    for language, words in by_language.items():
        at = (*where, language) if language else where
        code = reader.language(at, language) if language else m.ANY_LANGUAGE
        if code is None:
            continue
        items = reader.items(at, words, "keywords")
        texts = [reader.text(item_at, item, "a keyword") for item_at, item in items]
        found[code] = found.get(code, ()) + tuple(text for text in texts if text)
    return {language: words for language, words in found.items() if words}


def _branch(reader: Reader, where: YamlPath, value: Any) -> m.Action | None:
    data = reader.mapping(where, value, "branch", ("cases", "default"), ("default",))
    if data is None:
        return None
    default = reader.name((*where, "default"), data.get("default"), "default")
    cases_value = data.get("cases", [])
    if not isinstance(cases_value, list):
        reader.error((*where, "cases"), "cases must be a list of {condition..., next}")
        return None
    cases = [_case(reader, (*where, "cases", i), body) for i, body in enumerate(cases_value)]
    found = tuple(case for case in cases if case is not None)
    if default is None or len(found) != len(cases):
        return None
    return m.Branch(found, default)


def _case(reader: Reader, where: YamlPath, value: Any) -> m.Case | None:
    data = reader.mapping(where, value, "a branch case", CASE_KEYS, ("next",))
    if data is None:
        return None
    if not any(key in data for key in CASE_KEYS[:-1]):
        reader.error(
            where, "a case needs a condition: caller_prefix, from_country, language or vars"
        )
    checks = (
        ("caller_prefix", CALLER_PREFIX, 'a caller prefix such as "+84" (quoted)'),
        ("from_country", COUNTRY, "a two-letter country code such as VN"),
        ("language", LANGUAGE_CODE, "a language code such as vi-VN"),
    )
    tests: dict[str, tuple[str, ...]] = {}
    for key, pattern, shape in checks:
        items = reader.items((*where, key), data[key], key) if key in data else []
        for at, item in items:
            if not isinstance(item, str) or not pattern.match(item):
                reader.error(at, f"{key} {item!r} must be {shape}")
        found = tuple(str(item) for _, item in items)
        tests[key] = tuple(map(canonical_language, found)) if key == "language" else found
    variables: dict[str, tuple[str, ...]] = {}
    given = data.get("vars", {})
    if not isinstance(given, dict):
        reader.error((*where, "vars"), "vars must be a map of variable name to value(s)")
        given = {}
    for name, allowed in given.items():
        if not VARIABLE.match(name):
            reader.error(
                (*where, "vars", name), f"variable name {name!r} must be letters, digits and '_'"
            )
        items = reader.items((*where, "vars", name), allowed, f"variable {name!r}")
        texts = [_scalar(reader, at, item, f"variable {name!r}") for at, item in items]
        variables[name] = tuple(text for text in texts if text is not None)
    target = reader.name((*where, "next"), data.get("next"), "next")
    if target is None:
        return None
    when = m.Condition(tests["caller_prefix"], tests["from_country"], tests["language"], variables)
    return m.Case(when, target)


def _dial(reader: Reader, where: YamlPath, value: Any) -> m.Action | None:
    if not isinstance(value, dict):
        number = reader.number(where, value, "dial")
        return m.Dial(number) if number else None
    keys = ("number", "timeout", "caller_id", "otherwise")
    data = reader.mapping(where, value, "dial", keys, ("number",))
    if data is None or "number" not in data:
        return None
    number = reader.number((*where, "number"), data["number"], "dial number")
    timeout = reader.whole((*where, "timeout"), data.get("timeout", 30), "timeout", 1, 600)
    caller_id, otherwise = _caller_id_otherwise(reader, where, data)
    if number is None:
        return None
    return m.Dial(number, timeout or 30, caller_id, otherwise)


def _route(reader: Reader, where: YamlPath, value: Any) -> m.Action | None:
    keys = ("queue", "otherwise", "caller_id", "hold")
    data = reader.mapping(where, value, "route", keys, ("queue",))
    if data is None or "queue" not in data:
        return None
    queue = reader.name((*where, "queue"), data["queue"], "queue")
    caller_id, otherwise = _caller_id_otherwise(reader, where, data)
    hold = _hold(reader, (*where, "hold"), data["hold"]) if "hold" in data else None
    if "hold" in data and hold is None:
        return None
    return m.Route(queue, otherwise, caller_id, hold) if queue else None


def _hold(reader: Reader, where: YamlPath, value: Any) -> m.Hold | None:
    if value is True:
        return m.Hold()
    data = reader.mapping(where, value, "hold", ("music", "max_wait", "leave_key"))
    if data is None:
        return None
    music = data.get("music")
    if music is not None and not _is_url(music):
        reader.error((*where, "music"), f"hold music needs an http(s) URL, not {music!r}")
        return None
    max_wait = reader.whole((*where, "max_wait"), data.get("max_wait", 600), "max_wait", 10, 7200)
    leave_key = str(data.get("leave_key", "*"))
    if leave_key not in tuple("0123456789*#"):
        reader.error(
            (*where, "leave_key"), f"leave_key must be one key (0-9, * or #), not {leave_key!r}"
        )
        return None
    return m.Hold(music, max_wait or 600, leave_key) if max_wait else None


def _dequeue(reader: Reader, where: YamlPath, value: Any) -> m.Action | None:
    if isinstance(value, str):
        queue = reader.name(where, value, "queue")
        return m.Dequeue(queue) if queue else None
    data = reader.mapping(where, value, "dequeue", ("queue", "otherwise"), ("queue",))
    if data is None or "queue" not in data:
        return None
    queue = reader.name((*where, "queue"), data["queue"], "queue")
    _, otherwise = _caller_id_otherwise(reader, where, data)
    return m.Dequeue(queue, otherwise) if queue else None


def _is_url(value: Any) -> bool:
    parts = urlsplit(value) if isinstance(value, str) else None
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.netloc)


def _caller_id_otherwise(
    reader: Reader, where: YamlPath, data: dict[str, Any]
) -> tuple[str | None, str | None]:
    caller_id = data.get("caller_id")
    if caller_id is not None:
        caller_id = reader.number((*where, "caller_id"), caller_id, "caller_id")
    otherwise = data.get("otherwise")
    if otherwise is not None:
        otherwise = reader.name((*where, "otherwise"), otherwise, "otherwise")
    return caller_id, otherwise


def _voicemail(reader: Reader, where: YamlPath, value: Any) -> m.Action | None:
    keys = ("prompt", "max_seconds", "transcribe", "finish_on_key")
    data = reader.mapping(where, {} if value is None else value, "voicemail", keys)
    if data is None:
        return None
    prompt = None
    if "prompt" in data:
        prompt = reader.prompt((*where, "prompt"), data["prompt"], "voicemail prompt")
    max_seconds = reader.whole(
        (*where, "max_seconds"), data.get("max_seconds", 120), "max_seconds", 1, 3600
    )
    transcribe = reader.flag((*where, "transcribe"), data.get("transcribe", True), "transcribe")
    finish_on_key = _finish_key(reader, (*where, "finish_on_key"), data)
    if "prompt" in data and prompt is None:
        return None
    return m.Voicemail(
        prompt,
        max_seconds or 120,
        True if transcribe is None else transcribe,
        "#" if finish_on_key is None else finish_on_key,
    )


ACTION_READERS: dict[str, Callable[[Reader, YamlPath, Any], m.Action | None]] = {
    "say": _say,
    "play": _play,
    "pause": _pause,
    "language": _switch_language,
    "set": _set,
    "menu": _menu,
    "branch": _branch,
    "dial": _dial,
    "route": _route,
    "dequeue": _dequeue,
    "voicemail": _voicemail,
}
