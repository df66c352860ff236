"""Call flows as frozen values, built once by the loader from the YAML ops edit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ANY_LANGUAGE = ""  # key of a prompt text that serves every language


@dataclass(frozen=True)
class Located:
    """Where a definition was written, for messages that point at it."""

    path: str
    line: int
    col: int


@dataclass(frozen=True)
class Prompt:
    """Words to speak: one text for every language, or a text per language."""

    texts: Mapping[str, str]

    def text(self, language: str) -> str:
        """The text for `language`, else the all-language text, else the empty string."""
        found = self.texts.get(language)
        if found is None:
            found = self.texts.get(ANY_LANGUAGE, "")
        return found

    def covers(self, language: str) -> bool:
        """Whether the prompt has words for `language`."""
        return language in self.texts or ANY_LANGUAGE in self.texts


@dataclass(frozen=True)
class Say:
    prompt: Prompt
    loop: int = 1


@dataclass(frozen=True)
class Play:
    url: str
    loop: int = 1


@dataclass(frozen=True)
class Pause:
    seconds: int = 1


@dataclass(frozen=True)
class Option:
    """One menu choice: the key(s) pressed, or words said, and where it leads."""

    key: str
    next: str | None = None
    language: str | None = None
    # Spoken words that choose this option, by language (ANY_LANGUAGE for all).
    keywords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Menu:
    """A Gather: keypad and optionally speech, with counted attempts, then `otherwise`."""

    prompt: Prompt
    options: tuple[Option, ...]
    speech: bool = False
    num_digits: int | None = None
    timeout: int = 5
    finish_on_key: str = "#"
    attempts: int = 3
    no_input: Prompt | None = None
    invalid: Prompt | None = None
    otherwise: str | None = None
    min_confidence: float = 0.4

    def option(self, key: str) -> Option | None:
        """The option chosen by `key`, if any."""
        for option in self.options:
            if option.key == key:
                return option
        return None


@dataclass(frozen=True)
class SetVars:
    """Session variables to set, kept for the rest of the call."""

    values: Mapping[str, str]


@dataclass(frozen=True)
class Condition:
    """What a branch case tests; every given field must hold."""

    caller_prefix: tuple[str, ...] = ()
    from_country: tuple[str, ...] = ()
    language: tuple[str, ...] = ()
    variables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    when: Condition
    next: str


@dataclass(frozen=True)
class Branch:
    """The first case whose condition holds chooses the next step; else `default`."""

    cases: tuple[Case, ...]
    default: str


@dataclass(frozen=True)
class SwitchLanguage:
    """Speak `language` from here on."""

    language: str


@dataclass(frozen=True)
class Dial:
    """Connect the caller to an outside number; `otherwise` when it is not answered."""

    number: str
    timeout: int = 30
    caller_id: str | None = None
    otherwise: str | None = None


@dataclass(frozen=True)
class Hold:
    """Waiting in line when every agent on shift is busy, with music and announcements."""

    music: str | None = None  # audio URL played between announcements
    max_wait: int = 600  # seconds in line before `otherwise`
    leave_key: str = "*"  # pressed to leave a message instead of waiting


@dataclass(frozen=True)
class Route:
    """Hand the caller to the agent pools serving `queue`; `otherwise` when none answers."""

    queue: str
    otherwise: str | None = None
    caller_id: str | None = None
    hold: Hold | None = None


@dataclass(frozen=True)
class Dequeue:
    """Connect an agent who calls in to the caller waiting longest in `queue`."""

    queue: str
    otherwise: str | None = None


@dataclass(frozen=True)
class Voicemail:
    """Record a message; it becomes a support ticket."""

    prompt: Prompt | None = None
    max_seconds: int = 120
    transcribe: bool = True
    finish_on_key: str = "#"


Action = (
    Say
    | Play
    | Pause
    | Menu
    | SetVars
    | Branch
    | SwitchLanguage
    | Dial
    | Route
    | Dequeue
    | Voicemail
)

# Actions after which the call waits for Twilio to come back with the caller's input or a result.
WAITING_ACTIONS = (Menu, Dial, Route, Dequeue, Voicemail)


@dataclass(frozen=True)
class Step:
    """One node of a flow: at most one action, then `next` (or the end of the call)."""

    name: str
    action: Action | None
    next: str | None = None
    hangup: bool = False
    at: Located | None = None

    def targets(self) -> tuple[str, ...]:
        """Every step name this step can lead to."""
        found: list[str] = [self.next] if self.next else []
        action = self.action
        if isinstance(action, Menu):
            found += [o.next for o in action.options if o.next]
            found += [action.otherwise] if action.otherwise else []
        elif isinstance(action, Branch):
            found += [c.next for c in action.cases] + [action.default]
        elif isinstance(action, Dial | Route | Dequeue) and action.otherwise:
            found.append(action.otherwise)
        return tuple(found)


@dataclass(frozen=True)
class Flow:
    """A whole call flow: the numbers it answers, its languages and its steps."""

    name: str
    path: str
    languages: tuple[str, ...]
    start: str
    steps: Mapping[str, Step]
    numbers: tuple[str, ...] = ()
    default: bool = False
    voices: Mapping[str, str] = field(default_factory=dict)
    speech_languages: Mapping[str, str] = field(default_factory=dict)  # when not the language
    fallback: str | None = None  # a voicemail or dial step used when something fails
    description: str = ""  # free text from the file, for people reading listings and graphs

    @property
    def language(self) -> str:
        """The default language: the first one declared."""
        return self.languages[0]

    def voice(self, language: str) -> str | None:
        """The text-to-speech voice for `language`."""
        return self.voices.get(language)

    def speech_language(self, language: str) -> str:
        """The code spoken answers of `language` callers are recognised in."""
        return self.speech_languages.get(language, language)
