"""The call service: one webhook in, the flow engine run against stored state, TwiML out.

Every answer is stored with the request it answers, so a retried webhook gets the same TwiML
and never moves the call on twice. Any failure becomes safe TwiML: an apology in the caller's
language, then the flow's fallback (voicemail or a number), never a Twilio application error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ivr.flows import engine
from ivr.flows.engine import Router, Turn
from ivr.flows.model import Dial, Flow, Hold, Route, Voicemail
from ivr.flows.registry import FlowRegistry, FlowSet
from ivr.flows.state import CallState
from ivr.metrics import CALLS_ENDED, CALLS_STARTED, ROUTES, WEBHOOK_SECONDS, WEBHOOKS
from ivr.phrases import phrase
from ivr.store import Store
from ivr.twiml import (
    GatherVerb,
    HangupVerb,
    LeaveVerb,
    PlayVerb,
    RedirectVerb,
    SayVerb,
    Verb,
    render,
)
from ivr.voice.params import CallParams

log = logging.getLogger(__name__)

RouterFactory = Callable[[FlowSet], Router]


class VoiceService:
    """Answers Twilio's voice webhooks for the flows of a registry."""

    def __init__(self, registry: FlowRegistry, store: Store, routers: RouterFactory) -> None:
        self.registry = registry
        self.store = store
        self.routers = routers

    def answer(self, params: CallParams, kind: str, turn: int, language: str = "") -> str:
        """TwiML for request `turn` of a call ("incoming", "input", "dial", "recorded", "queue")."""
        started = time.perf_counter()
        try:
            reply, result = self._answer(params, kind, turn), "ok"
        except Exception:
            log.exception(
                "call %s: %s webhook failed; answering with the fallback", params.sid, kind
            )
            reply, result = self.safe_reply(params, language), "fallback"
        WEBHOOKS.labels(kind, result).inc()
        WEBHOOK_SECONDS.labels(kind).observe(time.perf_counter() - started)
        return reply

    def _answer(self, params: CallParams, kind: str, turn: int) -> str:
        flowset = self.registry.current()
        if kind == "incoming":
            # A new call needs no read: the commit fails if a retry of it got there first.
            return self._begin(params, kind, turn, flowset)
        state = self.store.load_call(params.sid)
        if state is None:
            return self._begin(params, kind, turn, flowset)
        if turn != state.turn:
            return self._replay(params, kind, turn, state)
        call_flows = self.registry.version(state.version) or flowset
        flow = call_flows.flows.get(state.flow) if call_flows else None
        if call_flows is None or flow is None:
            raise LookupError(f"flow {state.flow!r} of version {state.version} is gone")
        result = engine.resume(flow, state, params.event(kind), self.routers(call_flows))
        return self._commit(params, kind, turn, result, expected=turn)

    def _begin(self, params: CallParams, kind: str, turn: int, flowset: FlowSet | None) -> str:
        if flowset is None:
            raise LookupError("no call flows are loaded")
        flow = flowset.for_number(params.called)
        if flow is None:
            log.warning("call %s to %s: no flow answers that number", params.sid, params.called)
            return self.safe_reply(params, "")
        if kind != "incoming":
            log.warning(
                "call %s: %s webhook for a call not known here; starting it", params.sid, kind
            )
        result = engine.begin(flow, flowset.version, params.call, self.routers(flowset))
        result.log.insert(
            0,
            (
                "call",
                {
                    "from": params.caller,
                    "to": params.called,
                    "flow": flow.name,
                    "version": flowset.version,
                },
            ),
        )
        return self._commit(params, kind, turn, result, expected=None)

    def _commit(
        self, params: CallParams, kind: str, turn: int, result: Turn, expected: int | None
    ) -> str:
        state = result.state.evolve(turn=turn + 1)
        reply = render(result.verbs, state.turn)
        entries: list[dict[str, Any]] = [{"kind": k, **detail} for k, detail in result.log]
        if self.store.commit(state, expected, turn, reply, params.fingerprint(kind), entries):
            _count(entries, state)
            return reply
        # Another request of this call got there first (Twilio retried while we worked).
        stored = self.store.load_call(params.sid)
        if stored is None:
            raise LookupError("call state vanished during commit")
        return self._replay(params, kind, turn, stored)

    def _replay(self, params: CallParams, kind: str, turn: int, state: CallState) -> str:
        WEBHOOKS.labels(kind, "replayed").inc()
        wanted = turn if turn < state.turn else state.turn - 1
        reply, answered_input = self.store.reply(params.sid, wanted)
        if answered_input is not None and answered_input != params.fingerprint(kind):
            log.warning(
                "call %s: request %d repeated with other input; same answer", params.sid, turn
            )
        if reply is None:
            raise LookupError(f"no answer kept for request {wanted} of call {params.sid}")
        return reply

    def hold(self, params: CallParams, language: str, key_pressed: bool) -> str:
        """The hold queue's wait music and announcements, or leaving the line for voicemail."""
        try:
            flow, hold = self._hold_of(params.sid)
        except Exception:
            log.exception("call %s: hold queue lookup failed; leaving the queue", params.sid)
            return render([LeaveVerb()])
        if hold is None or params.queue_seconds >= hold.max_wait:
            return render([LeaveVerb()])
        if key_pressed:
            wanted = params.digits == hold.leave_key
            return render(
                [LeaveVerb()] if wanted else [RedirectVerb(f"/voice/hold?lang={language}")]
            )
        return render(hold_verbs(flow, language, hold, params))

    def _hold_of(self, sid: str) -> tuple[Flow | None, Hold | None]:
        state = self.store.load_call(sid)
        if state is None:
            return None, None
        flowset = self.registry.version(state.version) or self.registry.current()
        flow = flowset.flows.get(state.flow) if flowset else None
        step = flow.steps.get(state.step) if flow else None
        action = step.action if step else None
        return flow, action.hold if isinstance(action, Route) else None

    def status(self, params: CallParams) -> None:
        """Record Twilio's status callback for a call."""
        if params.call_status in ("completed", "busy", "failed", "no-answer", "canceled"):
            self.store.end_call(params.sid, params.call_status, params.call_duration)
        else:
            self.store.append_log(params.sid, [{"kind": "status", "status": params.call_status}])

    def safe_reply(self, params: CallParams, language: str) -> str:
        """Apology, then the flow's fallback; needs no Redis and cannot fail."""
        try:
            flowset = self.registry.current()
        except Exception:
            flowset = None
        flow = flowset.for_number(params.called) if flowset else None
        return render(fallback_verbs(flow, language))


def _count(entries: list[dict[str, Any]], state: CallState) -> None:
    for entry in entries:
        if entry["kind"] == "call":
            CALLS_STARTED.labels(state.flow).inc()
        elif entry["kind"] == "route":
            ROUTES.labels(entry["queue"], (entry["pools"] or ["none"])[0]).inc()
        elif entry["kind"] == "end":
            CALLS_ENDED.labels(entry["outcome"]).inc()


def fallback_verbs(flow: Flow | None, language: str) -> list[Verb]:
    """What a caller hears when the call cannot go on normally."""
    if flow is not None and language not in flow.languages:
        language = flow.language
    language = language or "en-US"
    verbs: list[Verb] = [engine.say_phrase(flow, "apology", language)]
    step = flow.steps.get(flow.fallback) if flow and flow.fallback else None
    action = step.action if step else None
    base = f"/voice/fallback?lang={language}&kind="
    if flow is not None and isinstance(action, Voicemail):
        return verbs + engine.voicemail_verbs(flow, language, action, base + "recorded")
    if isinstance(action, Dial):
        return [*verbs, engine.dial_verb(action, base + "dial")]
    verbs += [engine.say_phrase(flow, "call_back_later", language), HangupVerb()]
    return verbs


def hold_verbs(flow: Flow | None, language: str, hold: Hold, params: CallParams) -> list[Verb]:
    """One round of waiting: where the caller is in line, how to leave, then music."""
    words: list[str] = []
    if params.queue_position:
        words.append(_phrase("hold_position", language, position=params.queue_position))
    if params.average_queue_seconds:
        minutes = max(1, -(-params.average_queue_seconds // 60))
        words.append(_phrase("hold_wait", language, minutes=minutes))
    key = {"*": _phrase("key_star", language), "#": _phrase("key_hash", language)}
    words.append(_phrase("hold_leave", language, key=key.get(hold.leave_key, hold.leave_key)))
    voice = engine.say_phrase(flow, "hold_leave", language)
    prompts: list[SayVerb | PlayVerb] = [SayVerb(" ".join(words), voice.language, voice.voice)]
    if hold.music:
        prompts.append(PlayVerb(hold.music))
    gather = GatherVerb(
        action=f"/voice/hold/key?lang={language}", prompts=tuple(prompts), num_digits=1, timeout=1
    )
    return [gather]


def _phrase(name: str, language: str, **values: object) -> str:
    return phrase(name, language)[0].format(**values)


def fallback_done(flow: Flow | None, kind: str, params: CallParams, language: str) -> list[Verb]:
    """The end of a fallback: thanks for the message, or goodbye."""
    language = language or (flow.language if flow else "en-US")
    if kind == "recorded" and params.recording_url and params.recording_duration > 0:
        key = "message_saved"
    elif kind == "dial" and params.dial_status in engine.ANSWERED:
        return [HangupVerb()]
    else:
        key = "call_back_later"
    return [engine.say_phrase(flow, key, language), HangupVerb()]
