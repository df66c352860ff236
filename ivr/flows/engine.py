"""The flow engine: from (flow, state, what Twilio reported) to what the caller hears next.

No I/O here. Routing decisions come from an injected Router, which the web layer backs with
the routing module and Redis; everything else is a function of its arguments.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ivr.calls.events import (
    CallEvent,
    DialEnded,
    DialStarted,
    FlowHungUp,
    HoldJoined,
    HoldLeft,
    InputReceived,
    LanguageChosen,
    MenuExhausted,
    PassedPool,
    RouteDecided,
    StepEntered,
    VoicemailRecorded,
)
from ivr.errors import IvrError
from ivr.flows.model import (
    ANY_LANGUAGE,
    Branch,
    Condition,
    Dequeue,
    Dial,
    Flow,
    Menu,
    Option,
    Pause,
    Play,
    Prompt,
    Route,
    Say,
    SetVars,
    Step,
    SwitchLanguage,
    Voicemail,
)
from ivr.flows.state import (
    CallInfo,
    CallState,
    DialAttempt,
    Dialed,
    Event,
    Gathered,
    Queued,
    Recorded,
    RouteProgress,
)
from ivr.phrases import DEFAULT_VOICES, phrase
from ivr.tickets.transcribe import twilio_transcribes
from ivr.twiml import (
    DialTarget,
    DialVerb,
    EnqueueVerb,
    GatherVerb,
    HangupVerb,
    PauseVerb,
    PlayVerb,
    RecordVerb,
    RedirectVerb,
    SayVerb,
    Verb,
)

# A walk longer than this without waiting for the caller is a loop the validator missed.
MAX_HOPS = 200
ANSWERED = frozenset({"completed", "answered"})


class FlowFault(IvrError):
    """The flow cannot go on (a missing step, a loop): the caller gets the fallback."""


@dataclass(frozen=True)
class RoutePlan:
    """The Dials to try for a route, in order, and why; the pools passed over and why."""

    attempts: tuple[DialAttempt, ...]
    reason: str
    passed_over: tuple[PassedPool, ...] = ()
    strategy: str | None = None
    presence: str | None = None  # the snapshot of agents' presence planned with, if one was
    unordered: tuple[str, ...] = ()  # pools whose turn is taken when the call reaches them


class Router(Protocol):
    def plan(self, route: Route, state: CallState, at: float) -> RoutePlan:
        """The Dials to try for this caller at `at`."""

    def away(self) -> tuple[frozenset[str], str | None]:
        """The ids of the agents away now, and the presence token to check them against."""

    def order(
        self, attempts: tuple[DialAttempt, ...], at: float, presence: str | None = None
    ) -> tuple[DialAttempt, ...]:
        """One pool's attempts, planned in file order, in the order its turn gives at `at`."""


class NoRouter:
    """A router with no pools: every route goes to its `otherwise`."""

    def plan(self, route: Route, state: CallState, at: float) -> RoutePlan:
        """No attempts."""
        return RoutePlan((), "no agent pools are configured")

    def away(self) -> tuple[frozenset[str], str | None]:
        """Nobody."""
        return frozenset(), None

    def order(
        self, attempts: tuple[DialAttempt, ...], at: float, presence: str | None = None
    ) -> tuple[DialAttempt, ...]:
        """As planned."""
        return attempts


class Urls(Protocol):
    """Where Twilio reports back: the web layer decides the paths, the engine only asks."""

    def action(self, kind: str, language: str) -> str:
        """The action URL of a waiting verb: kind is "input", "dial", "recorded" or "queue"."""

    def hold(self, language: str) -> str:
        """The wait URL of the hold line."""

    def recording(self) -> str:
        """The recording status callback."""

    def transcription(self) -> str:
        """The transcription callback."""

    def answered(self, pool: str, agent: str) -> str:
        """The status callback telling that `agent` of `pool` picked up."""

    def dequeued(self, queue: str) -> str:
        """Asked on a waiting caller's line as an agent takes it from the hold line."""


@dataclass(frozen=True)
class Context:
    """What a turn is played with: the router, the URLs, and the instant (read at the edge)."""

    router: Router
    urls: Urls
    at: float
    # The call is over (the action's CallStatus is final, or the final status came first): its
    # facts are kept, but the flow does not route, ring or play to a caller who is gone.
    caller_gone: bool = False


@dataclass
class Turn:
    """One webhook's answer: the verbs to play, the state to keep and the events to record."""

    state: CallState
    context: Context
    verbs: list[Verb] = field(default_factory=list)
    events: list[CallEvent] = field(default_factory=list)
    presence: str | None = None  # the presence snapshot a route planned with: still true?

    def emit(self, kind: type[CallEvent], **values: Any) -> None:
        """Record an event of this turn, at the turn's instant."""
        self.events.append(kind(at=self.context.at, **values))

    def action(self, kind: str) -> str:
        """The action URL of a waiting verb, in the caller's current language."""
        return self.context.urls.action(kind, self.state.language)


def begin(flow: Flow, version: str, call: CallInfo, context: Context) -> Turn:
    """Start a call at the flow's first step."""
    state = CallState(
        sid=call.sid,
        flow=flow.name,
        version=version,
        step=flow.start,
        language=flow.language,
        caller=call.caller,
        called=call.called,
        from_country=call.from_country,
    )
    turn = Turn(state, context)
    _walk(flow, turn, flow.start)
    return turn


def resume(flow: Flow, state: CallState, event: Event, context: Context) -> Turn:
    """Continue a waiting call with what Twilio reported."""
    turn = Turn(state, context)
    step = _step(flow, state.step)
    action = step.action
    if state.ended:
        turn.verbs.append(HangupVerb())
    elif context.caller_gone:
        _report_only(turn, step, event)
    elif isinstance(action, Menu) and isinstance(event, Gathered):
        _answer_menu(flow, turn, step, action, event)
    elif isinstance(action, Route) and isinstance(event, Dialed):
        _after_route_dial(flow, turn, action, event)
    elif isinstance(action, Route) and isinstance(event, Queued):
        _after_hold(flow, turn, action, event)
    elif isinstance(action, Dial | Dequeue) and isinstance(event, Dialed):
        _after_dial(flow, turn, action, event)
    elif isinstance(action, Voicemail) and isinstance(event, Recorded):
        _after_voicemail(flow, turn, step, event)
    else:
        # Twilio reported something this step does not wait for (a stale or odd request):
        # play the waiting step again rather than guess.
        _walk(flow, turn, step.name)
    return turn


def _report_only(turn: Turn, step: Step, event: Event) -> None:
    """What Twilio reports of a call already over (the action's CallStatus is final, or the
    final status came first): the facts are kept, but the flow does not go on; nobody is on the
    line to route, ring or play to."""
    action = step.action
    progress = turn.state.route
    if isinstance(action, Route) and isinstance(event, Dialed) and progress is not None:
        _dial_ended(turn, progress.current, event)
    elif isinstance(action, Route) and isinstance(event, Queued):
        turn.emit(HoldLeft, queue=action.queue, result=event.result, seconds=event.seconds)
    elif isinstance(action, Dial | Dequeue) and isinstance(event, Dialed):
        _number_dial_ended(turn, action, event)
    elif isinstance(action, Voicemail) and isinstance(event, Recorded):
        _recorded(turn, step, event)
    # The call is over as of now, even if its final status callback never comes.
    _end(turn, "completed")


def say(flow: Flow, language: str, prompt: Prompt, loop: int = 1) -> SayVerb:
    """A Say of `prompt` in `language` with the flow's voice for it."""
    return SayVerb(prompt.text(language), language, _voice(flow, language), loop)


def say_phrase(flow: Flow | None, key: str, language: str) -> SayVerb:
    """A Say of one of the product's own phrases, in `language` when it has it."""
    text, used = phrase(key, language)
    return SayVerb(text, used, _voice(flow, used))


def _voice(flow: Flow | None, language: str) -> str | None:
    if flow is not None and language in flow.voices:
        return flow.voices[language]
    return DEFAULT_VOICES.get(language)


def _step(flow: Flow, name: str) -> Step:
    try:
        return flow.steps[name]
    except KeyError:
        raise FlowFault(f"flow {flow.name!r} has no step {name!r}") from None


def _walk(flow: Flow, turn: Turn, name: str | None) -> None:
    """Play steps from `name` on until one waits for the caller or the call ends."""
    for _ in range(MAX_HOPS):
        if name is None:
            _end(turn, "completed")
            return
        step = _step(flow, name)
        turn.state = turn.state.evolve(step=name)
        turn.emit(StepEntered, step=name)
        language = turn.state.language
        action = step.action
        following = step.next
        match action:
            case Say():
                turn.verbs.append(say(flow, language, action.prompt, action.loop))
            case Play():
                turn.verbs.append(PlayVerb(action.url, action.loop))
            case Pause():
                turn.verbs.append(PauseVerb(action.seconds))
            case SetVars():
                turn.state = turn.state.evolve(variables={**turn.state.variables, **action.values})
            case SwitchLanguage():
                _switch_language(turn, action.language)
            case Branch():
                following = _branch(action, turn.state)
            case Menu():
                turn.state = turn.state.evolve(attempts=0)
                turn.verbs += _gather(flow, turn, action, ())
                return
            case Route():
                _enter_route(flow, turn, step, action)
                return
            case Dial():
                turn.emit(DialStarted, number=action.number, timeout=action.timeout)
                turn.verbs.append(dial_verb(action, turn.action("dial")))
                return
            case Dequeue():
                turn.emit(DialStarted, number=f"queue {action.queue}", queue=action.queue)
                taken = turn.context.urls.dequeued(action.queue)
                target = (DialTarget("queue", action.queue, taken),)
                turn.verbs.append(DialVerb(turn.action("dial"), target))
                return
            case Voicemail():
                turn.state = turn.state.evolve(attempts=0)
                turn.verbs += voicemail_verbs(
                    flow, language, action, turn.action("recorded"), turn.context.urls
                )
                return
        if step.hangup:
            _end(turn, "completed")
            return
        name = following
    raise FlowFault(f"flow {flow.name!r} walked {MAX_HOPS} steps without waiting for the caller")


def _switch_language(turn: Turn, language: str) -> None:
    turn.state = turn.state.evolve(language=language)
    turn.emit(LanguageChosen, language=language)


def _end(turn: Turn, outcome: str) -> None:
    turn.verbs.append(HangupVerb())
    turn.state = turn.state.evolve(ended=True, outcome=turn.state.outcome or outcome)
    turn.emit(FlowHungUp, step=turn.state.step)


def _gather(flow: Flow, turn: Turn, menu: Menu, before: tuple[SayVerb, ...]) -> list[Verb]:
    language = turn.state.language
    prompts = (*before, *_menu_prompt(flow, language, menu))
    num_digits = menu.num_digits
    if num_digits is None and menu.options and all(len(o.key) == 1 for o in menu.options):
        num_digits = 1
    action = turn.action("input")
    gather = GatherVerb(
        action=action,
        prompts=prompts,
        speech=menu.speech,
        language=flow.speech_language(language),
        num_digits=num_digits,
        timeout=menu.timeout,
        finish_on_key=menu.finish_on_key,
        hints=", ".join(k for o in menu.options for k in _keywords(o, language)),
    )
    # Reached only if Twilio ignores actionOnEmptyResult: treat it as silence, never dead air.
    return [gather, RedirectVerb(action)]


def _menu_prompt(flow: Flow, language: str, menu: Menu) -> tuple[SayVerb, ...]:
    """A language-choice menu speaks each language's words in that language's voice."""
    texts = menu.prompt.texts
    if ANY_LANGUAGE not in texts and all(option.language for option in menu.options):
        return tuple(say(flow, lang, menu.prompt) for lang in flow.languages if lang in texts)
    return (say(flow, language, menu.prompt),)


def _answer_menu(flow: Flow, turn: Turn, step: Step, menu: Menu, event: Gathered) -> None:
    option, problem = _choose(menu, event, turn.state.language)
    turn.emit(
        InputReceived,
        step=step.name,
        digits=event.digits,
        speech=event.speech,
        confidence=event.confidence,
        chosen=option.key if option else None,
        problem=problem,
    )
    if option is not None:
        turn.state = turn.state.evolve(attempts=0)
        if option.language:
            _switch_language(turn, option.language)
        _walk(flow, turn, option.next or step.next)
        return
    used = turn.state.attempts + 1
    turn.state = turn.state.evolve(attempts=used)
    if used >= menu.attempts:
        turn.emit(MenuExhausted, step=step.name, attempts=used)
        if menu.otherwise is None:
            turn.verbs.append(say_phrase(flow, "call_back_later", turn.state.language))
        _walk(flow, turn, menu.otherwise)
        return
    language = turn.state.language
    custom = menu.no_input if problem == "no_input" else menu.invalid
    sorry = say(flow, language, custom) if custom else say_phrase(flow, problem, language)
    turn.verbs += _gather(flow, turn, menu, (sorry,))


def _choose(menu: Menu, event: Gathered, language: str) -> tuple[Option | None, str]:
    """The option the caller chose, or why none was: "no_input" or "invalid"."""
    digits = event.digits.strip()
    if digits:
        found = menu.option(digits)
        return (found, "") if found else (None, "invalid")
    words = _normalise(event.speech)
    if not words:
        return None, "no_input"
    if event.confidence is not None and event.confidence < menu.min_confidence:
        return None, "invalid"
    said = f" {words} "
    for option in menu.options:
        if f" {_normalise(option.key)} " in said:
            return option, ""
        for keyword in _keywords(option, language):
            if f" {_normalise(keyword)} " in said:
                return option, ""
    return None, "invalid"


def _keywords(option: Option, language: str) -> tuple[str, ...]:
    return option.keywords.get(language, ()) + option.keywords.get(ANY_LANGUAGE, ())


# Arabic short vowels, shadda, sukun and the like, and the tatweel: optional in writing, so a
# transcript and a keyword may differ in them alone.
ARABIC_OPTIONAL = re.compile("[\u0640\u064b-\u065f\u0670\u06d6-\u06ed]")
# Letters transcripts and writers interchange: alef with or without hamza or madda, alef maksura
# and yeh, teh marbuta and heh.
ARABIC_VARIANTS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ى": "ي", "ة": "ه"})


def _normalise(text: str) -> str:
    """Lower-case words without punctuation, keeping letters of every script and their marks."""
    text = ARABIC_OPTIONAL.sub("", unicodedata.normalize("NFC", text).casefold())
    text = text.translate(ARABIC_VARIANTS)
    # Combining marks (Devanagari's vowel signs, Thai's tone marks) belong to their word: `\w`
    # alone would cut the word at each of them.
    kept = (
        ch if ch.isalnum() or ch in "_*#" or unicodedata.category(ch)[0] == "M" else " "
        for ch in text
    )
    return " ".join("".join(kept).split())


def _branch(branch: Branch, state: CallState) -> str:
    for case in branch.cases:
        if _holds(case.when, state):
            return case.next
    return branch.default


def _holds(when: Condition, state: CallState) -> bool:
    if when.caller_prefix and not state.caller.startswith(when.caller_prefix):
        return False
    if when.from_country and state.from_country.upper() not in when.from_country:
        return False
    if when.language and state.language not in when.language:
        return False
    variables: Mapping[str, str] = state.variables
    return all(variables.get(name) in allowed for name, allowed in when.variables.items())


def _enter_route(flow: Flow, turn: Turn, step: Step, route: Route) -> None:
    plan = turn.context.router.plan(route, turn.state, turn.context.at)
    turn.presence = plan.presence
    pools = tuple(dict.fromkeys(a.pool for a in plan.attempts))
    turn.emit(
        RouteDecided,
        step=step.name,
        queue=route.queue,
        language=turn.state.language,
        pools=pools,
        passed_over=plan.passed_over,
        chosen=pools[0] if pools else None,
        strategy=plan.strategy,
        reason=plan.reason,
    )
    if not plan.attempts:
        turn.state = turn.state.evolve(route=None)
        _leave_route(flow, turn, route)
        return
    progress = RouteProgress(route.queue, plan.attempts, 0, plan.unordered)
    turn.state = turn.state.evolve(route=progress)
    turn.verbs.append(say_phrase(flow, "connecting", turn.state.language))
    turn.verbs.append(_dial_attempt(turn, progress.current))


def _dial_attempt(turn: Turn, attempt: DialAttempt) -> DialVerb:
    turn.emit(DialStarted, pool=attempt.pool, agents=attempt.agents, timeout=attempt.timeout)
    urls = turn.context.urls
    targets = tuple(
        DialTarget(endpoint.kind, endpoint.address, urls.answered(attempt.pool, agent))
        for endpoint, agent in zip(attempt.targets, _padded(attempt), strict=True)
    )
    return DialVerb(turn.action("dial"), targets, attempt.timeout, attempt.caller_id)


def _padded(attempt: DialAttempt) -> tuple[str, ...]:
    agents = attempt.agents
    return agents + ("",) * (len(attempt.targets) - len(agents))


def _dial_ended(turn: Turn, attempt: DialAttempt, event: Dialed) -> None:
    """How a pool's Dial ended, on the record."""
    turn.emit(
        DialEnded, pool=attempt.pool, agents=attempt.agents, status=event.status,
        seconds=event.seconds,
    )  # fmt: skip


def _after_route_dial(flow: Flow, turn: Turn, route: Route, event: Dialed) -> None:
    progress = turn.state.route
    if progress is None:
        _leave_route(flow, turn, route)
        return
    attempt = progress.current
    _dial_ended(turn, attempt, event)
    if event.status in ANSWERED:
        turn.state = turn.state.evolve(outcome="answered")
        _end(turn, "answered")
        return
    away, turn.presence = turn.context.router.away()
    progress = _without_away(progress, away)
    if progress.index + 1 < len(progress.attempts):
        progress = _reached(turn, replace(progress, index=progress.index + 1))
        following = progress.current
        turn.state = turn.state.evolve(route=progress)
        # Words before every new Dial: between two rings the caller would otherwise hear nothing.
        turn.verbs.append(say_phrase(flow, "still_trying", turn.state.language))
        turn.verbs.append(_dial_attempt(turn, following))
        return
    # Agents rung and not away are on shift but busy; if all of them went away, nobody is.
    rung = {agent for attempt in progress.attempts for agent in attempt.agents}
    _leave_route(flow, turn, route, agents_on_shift=not rung or not rung <= away)


def _without_away(progress: RouteProgress, away: frozenset[str]) -> RouteProgress:
    """The route with the agents marked away since it was planned left out of the attempts
    still to come: an agent who went away while the call rang others is not rung."""
    done, ahead = progress.attempts[: progress.index + 1], progress.attempts[progress.index + 1 :]
    kept: list[DialAttempt] = []
    for attempt in ahead:
        pairs = [(t, a) for t, a in zip(attempt.targets, _padded(attempt), strict=True)]
        present = [(t, a) for t, a in pairs if a not in away]
        if len(present) == len(pairs):
            kept.append(attempt)
        elif present:
            targets, agents = zip(*present, strict=True)
            kept.append(replace(attempt, targets=targets, agents=tuple(a for a in agents if a)))
    return replace(progress, attempts=done + tuple(kept))


def _reached(turn: Turn, progress: RouteProgress) -> RouteProgress:
    """The route as it stands when the call reaches its current attempt: a pool whose turn
    was left for then is put in its order now, so that its turn goes only to calls that ring
    it."""
    pool = progress.current.pool
    if pool not in progress.unordered:
        return progress
    start = end = progress.index
    while end < len(progress.attempts) and progress.attempts[end].pool == pool:
        end += 1
    block = turn.context.router.order(progress.attempts[start:end], turn.context.at, turn.presence)
    return replace(
        progress,
        attempts=progress.attempts[:start] + block + progress.attempts[end:],
        unordered=tuple(p for p in progress.unordered if p != pool),
    )


def _leave_route(flow: Flow, turn: Turn, route: Route, agents_on_shift: bool = False) -> None:
    turn.verbs.append(say_phrase(flow, "all_busy", turn.state.language))
    if route.hold is not None and agents_on_shift:
        # Agents are working but busy: wait in line for the next one, or press a key for voicemail.
        language = turn.state.language
        turn.state = turn.state.evolve(route=None)
        turn.emit(HoldJoined, queue=route.queue)
        wait_url = turn.context.urls.hold(language)
        turn.verbs.append(EnqueueVerb(route.queue, turn.action("queue"), wait_url))
        return
    if route.otherwise is None:
        turn.verbs.append(say_phrase(flow, "call_back_later", turn.state.language))
    _walk(flow, turn, route.otherwise)


def _after_hold(flow: Flow, turn: Turn, route: Route, event: Queued) -> None:
    turn.emit(HoldLeft, queue=route.queue, result=event.result, seconds=event.seconds)
    if event.result in ("bridged", "bridging-in-process"):
        _end(turn, "answered")
        return
    if event.result == "hangup":
        _end(turn, "abandoned")
        return
    if route.otherwise is None:
        turn.verbs.append(say_phrase(flow, "call_back_later", turn.state.language))
    _walk(flow, turn, route.otherwise)


def _number_dial_ended(turn: Turn, dial: Dial | Dequeue, event: Dialed) -> None:
    """How a Dial of a number (or of the hold line's queue) ended, on the record."""
    target = dial.number if isinstance(dial, Dial) else f"queue {dial.queue}"
    turn.emit(DialEnded, number=target, status=event.status, seconds=event.seconds)


def _after_dial(flow: Flow, turn: Turn, dial: Dial | Dequeue, event: Dialed) -> None:
    _number_dial_ended(turn, dial, event)
    if event.status in ANSWERED:
        turn.state = turn.state.evolve(outcome="answered")
        _end(turn, "answered")
        return
    if dial.otherwise is None:
        key = "call_back_later" if isinstance(dial, Dial) else "queue_empty"
        turn.verbs.append(say_phrase(flow, key, turn.state.language))
    _walk(flow, turn, dial.otherwise)


def voicemail_verbs(
    flow: Flow, language: str, voicemail: Voicemail, action: str, urls: Urls
) -> list[Verb]:
    """The prompt and Record of a voicemail step, reporting to `action`."""
    prompt = (
        say(flow, language, voicemail.prompt)
        if voicemail.prompt
        else say_phrase(flow, "leave_message", language)
    )
    record = RecordVerb(
        action=action,
        max_seconds=voicemail.max_seconds,
        finish_on_key=voicemail.finish_on_key,
        transcribe=voicemail.transcribe and twilio_transcribes(language),
        transcribe_callback=urls.transcription(),
        recording_callback=urls.recording(),
    )
    return [prompt, record]


def dial_verb(dial: Dial, action: str) -> DialVerb:
    """The Dial of an outside number, reporting to `action`."""
    return DialVerb(action, (DialTarget("number", dial.number),), dial.timeout, dial.caller_id)


def _recorded(turn: Turn, step: Step, event: Recorded) -> None:
    """What a voicemail step's Record reported, on the record."""
    turn.emit(
        VoicemailRecorded,
        step=step.name,
        recording_sid=event.recording_sid,
        url=event.recording_url,
        seconds=event.duration,
    )


def _after_voicemail(flow: Flow, turn: Turn, step: Step, event: Recorded) -> None:
    got_message = bool(event.recording_url) and event.duration > 0
    _recorded(turn, step, event)
    language = turn.state.language
    if got_message:
        turn.state = turn.state.evolve(outcome="voicemail")
    elif turn.state.attempts == 0 and isinstance(step.action, Voicemail):
        # An empty or absent recording is no message: one more try, then goodbye.
        turn.state = turn.state.evolve(attempts=1)
        again = say_phrase(flow, "message_again", language)
        record = voicemail_verbs(
            flow, language, step.action, turn.action("recorded"), turn.context.urls
        )
        turn.verbs += [again, record[-1]]
        return
    if step.next:
        _walk(flow, turn, step.next)
        return
    turn.verbs.append(say_phrase(flow, "message_saved" if got_message else "no_message", language))
    _end(turn, "voicemail" if got_message else "completed")
