"""Scenario files of `ivr simulate --scenario`: scripted calls, read with every mistake located.

A move the caller makes is kept as the simulator's script takes it: keys or words as text ("-"
for silence), or a map saying how a prompt, a Dial, a Record or a wait in line ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.calls.summary import OUTCOMES
from ivr.errors import Problem
from ivr.yamlsource import Path as Where
from ivr.yamlsource import Reader, parse, read_text

CALL_KEYS = ("name", "from", "to", "country", "inputs", "expect")
EXPECT_KEYS = ("steps", "hears", "outcome")
# Twilio's DialCallStatus and QueueResult values a scripted Dial or wait in line may end with.
DIAL_STATUSES = ("completed", "answered", "busy", "no-answer", "failed", "canceled")
QUEUE_RESULTS = ("leave", "bridged", "hangup", "redirected", "queue-full", "error", "system-error")
MOVE_KEYS = ("press", "say", "silence", "dial", "record", "queue")


@dataclass(frozen=True)
class ScenarioCall:
    """One scripted call: who calls whom, the caller's moves, and what must happen."""

    name: str
    caller: str = "+15551230000"
    called: str = "+15005550006"
    country: str = "US"
    moves: tuple[Any, ...] = ()
    expect: dict[str, Any] = field(default_factory=dict)


class ScenarioReader(Reader):
    """Reads the calls of one scenario file."""

    def calls(self) -> list[ScenarioCall]:
        """Every call of the file (those with mistakes left out, their problems recorded)."""
        data = self.source.data
        if isinstance(data, dict):
            self.unknown_keys(data, (), ("calls",))
        entries = data.get("calls") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not entries:
            self.error(("calls",), "expected `calls:`, a list of scripted calls")
            return []
        found = [self.call(("calls", i), entry, i) for i, entry in enumerate(entries)]
        return [call for call in found if call is not None]

    def call(self, where: Where, entry: Any, index: int) -> ScenarioCall | None:
        """One call, or None after an error."""
        if not isinstance(entry, dict):
            self.error(where, "a call must be a map of name, from, to, country, inputs, expect")
            return None
        before = len(self.problems)
        self.unknown_keys(entry, where, CALL_KEYS)
        texts = {key: self.text((*where, key), entry[key]) for key in CALL_KEYS[:4] if key in entry}
        moves = entry.get("inputs", [])
        if not isinstance(moves, list):
            self.error((*where, "inputs"), "`inputs` must be a list of the caller's moves")
            moves = []
        script = tuple(self.move((*where, "inputs", i), move) for i, move in enumerate(moves))
        expect = self.expect((*where, "expect"), entry.get("expect", {}))
        if len(self.problems) > before:
            return None
        return ScenarioCall(
            name=texts.get("name") or f"call {index + 1}",
            caller=texts.get("from") or ScenarioCall.caller,
            called=texts.get("to") or ScenarioCall.called,
            country=texts.get("country") or ScenarioCall.country,
            moves=script,
            expect=expect,
        )

    def text(self, where: Where, value: Any) -> str:
        """`value` as text; numbers are taken as written (keys pressed, a number unquoted)."""
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
        self.error(where, f"expected text, got {value!r}")
        return ""

    def move(self, where: Where, value: Any) -> Any:
        """One move: keys or words (unquoted digits are keys), or a map of how a verb ends."""
        if not isinstance(value, dict):
            return self.text(where, value)
        self.unknown_keys(value, where, MOVE_KEYS)
        move: dict[str, Any] = {}
        for key, item in value.items():
            at: Where = (*where, key)
            if key in ("press", "say"):
                move[key] = self.text(at, item)
            elif key == "dial":
                move[key] = self.choice(at, item, DIAL_STATUSES, "a Dial's status")
            elif key == "queue":
                move[key] = self.choice(at, item, QUEUE_RESULTS, "a wait in line's result")
            elif key == "record":
                seconds = self.typed(at, item, int, f"`record` must be whole seconds, not {item!r}")
                move[key] = seconds if seconds is not None and seconds >= 0 else 0
            elif key == "silence":
                move[key] = item
        return move

    def choice(self, where: Where, value: Any, known: tuple[str, ...], what: str) -> str:
        """`value` when it is one of `known`, else an error naming them."""
        if value in known:
            return str(value)
        self.error(where, f"{value!r} is not {what} (one of: {', '.join(known)})")
        return known[0]

    def expect(self, where: Where, value: Any) -> dict[str, Any]:
        """What must happen: steps reached and words heard in order, and the outcome."""
        if not isinstance(value, dict):
            self.error(where, "`expect` must be a map of steps, hears and outcome")
            return {}
        self.unknown_keys(value, where, EXPECT_KEYS)
        found: dict[str, Any] = {}
        for key in ("steps", "hears"):
            if key in value:
                items = value[key] if isinstance(value[key], list) else [value[key]]
                found[key] = [self.text((*where, key), item) for item in items]
        if "outcome" in value:
            found["outcome"] = self.choice(
                (*where, "outcome"), value["outcome"], OUTCOMES, "an outcome"
            )
        return found


def read_scenario(path: Path) -> tuple[list[ScenarioCall], list[Problem]]:
    """The calls of a scenario file, and every problem with it."""
    text, problems = read_text(path, "the scenario")
    if text is None:
        return [], problems
    source, problems = parse(text, str(path))
    if source is None or problems:
        return [], problems
    reader = ScenarioReader(source)
    calls = reader.calls()
    return calls, reader.problems
