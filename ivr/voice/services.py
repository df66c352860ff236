"""The call service: one webhook in, the flow engine run against stored state, TwiML out.

Every answer is stored with the request it answers, so a retried webhook gets the same TwiML
and never moves the call on twice. Any failure becomes safe TwiML: an apology in the caller's
language, then the flow's fallback (voicemail or a number), never a Twilio application error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from ivr.calls.events import (
    AgentAnswered,
    CallEnded,
    CallEvent,
    CallStarted,
    FallbackUsed,
    RouteDecided,
    TwilioStatus,
)
from ivr.calls.summary import FINAL_STATUSES, CallSummary, fold
from ivr.errors import StoreUnavailable
from ivr.flows import engine
from ivr.flows.engine import Context, FlowFault, Router, Turn
from ivr.flows.model import Dial, Flow, Hold, Route, Voicemail
from ivr.flows.registry import FlowRegistry, FlowSet
from ivr.flows.state import CallState
from ivr.metrics import (
    ANSWER_SECONDS,
    CALLS_ENDED,
    CALLS_STARTED,
    ROUTES,
    WEBHOOK_SECONDS,
    WEBHOOKS,
)
from ivr.phrases import phrase
from ivr.store import ClosedMeanwhile, Loaded, PresenceChanged, Store
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
from ivr.voice.urls import VOICE_URLS, VoiceUrls

log = logging.getLogger(__name__)

RouterFactory = Callable[[FlowSet], Router]
Recorder = Callable[[str, Sequence[CallEvent]], None]
PRESENCE_RETRIES = 3  # plans of one turn on changing presence, before the fallback


class VoiceService:
    """Answers Twilio's voice webhooks for the flows of a registry."""

    def __init__(
        self,
        registry: FlowRegistry,
        store: Store,
        routers: RouterFactory,
        record_quietly: Recorder,
        urls: VoiceUrls = VOICE_URLS,
    ) -> None:
        self.registry = registry
        self.store = store
        self.routers = routers
        self.record_quietly = record_quietly
        self.urls = urls

    def answer(
        self, params: CallParams, kind: str, turn: int, at: float, language: str = ""
    ) -> str:
        """TwiML for request `turn` of a call ("incoming", "input", "dial", "recorded", "queue")."""
        started = time.perf_counter()
        try:
            reply, result = self._answer(params, kind, turn, at), "ok"
        except Exception as exc:
            log.exception(
                "call %s: %s webhook failed; answering with the fallback", params.sid, kind
            )
            reply, result = self.safe_reply(params, language), "fallback"
            self._record_fallback(params, kind, at, exc)
        WEBHOOKS.labels(kind, result).inc()
        WEBHOOK_SECONDS.labels(kind).observe(time.perf_counter() - started)
        return reply

    def _answer(self, params: CallParams, kind: str, turn: int, at: float) -> str:
        # A route plans on the agents' presence this process last saw; the write refuses the
        # turn if that changed since, and the turn is played again on what Redis holds now.
        # So is a turn played for a caller whose final status another worker took meanwhile.
        for _ in range(PRESENCE_RETRIES):
            try:
                return self._answer_once(params, kind, turn, at)
            except PresenceChanged:
                log.info(
                    "call %s: agents' presence changed while routing; routing again", params.sid
                )
            except ClosedMeanwhile:
                log.info("call %s: ended while answering %s; answering again", params.sid, kind)
        raise FlowFault("agents' presence kept changing while routing")

    def _answer_once(self, params: CallParams, kind: str, turn: int, at: float) -> str:
        flowset = self.registry.current()
        if kind == "incoming":
            # A new call needs no read: the commit fails if a retry of it got there first.
            return self._begin(params, kind, turn, flowset, at, None)
        loaded = self.store.load_turn(params.sid, turn)
        state = loaded.state
        if state is None:
            return self._begin(params, kind, turn, flowset, at, loaded)
        if turn != state.turn:
            return self._replay(params, kind, turn, state)
        call_flows = self.registry.version(state.version) or flowset
        flow = call_flows.flows.get(state.flow) if call_flows else None
        if call_flows is None or flow is None:
            raise FlowFault(f"flow {state.flow!r} of version {state.version} is gone")
        # An action of a call that is over (its CallStatus says so, or the final status came
        # first: Twilio sends both as the caller hangs up, in either order): its facts count,
        # but the flow must not route, ring or queue a caller who is gone.
        gone = loaded.summary.closed or params.call_status in FINAL_STATUSES
        context = Context(self.routers(call_flows), self.urls, at, caller_gone=gone)
        result = engine.resume(flow, state, params.event(kind), context)
        return self._commit(params, kind, turn, result, turn, loaded)

    def _begin(
        self,
        params: CallParams,
        kind: str,
        turn: int,
        flowset: FlowSet | None,
        at: float,
        loaded: Loaded | None,
    ) -> str:
        if flowset is None:
            raise FlowFault("no call flows are loaded")
        flow = flowset.for_number(params.called)
        if flow is None:
            log.warning("call %s to %s: no flow answers that number", params.sid, params.called)
            self._record_fallback(params, kind, at, FlowFault("no flow answers that number"))
            return self.safe_reply(params, "")
        if kind != "incoming":
            log.warning(
                "call %s: %s webhook for a call not known here; starting it", params.sid, kind
            )
        context = Context(self.routers(flowset), self.urls, at)
        result = engine.begin(flow, flowset.version, params.call, context)
        result.events.insert(0, _started(params, at, flow.name, flowset.version, flow.language))
        return self._commit(params, kind, turn, result, None, loaded)

    def _commit(
        self,
        params: CallParams,
        kind: str,
        turn: int,
        result: Turn,
        expected: int | None,
        loaded: Loaded | None,
    ) -> str:
        state = result.state.evolve(turn=turn + 1)
        reply = render(result.verbs, state.turn)
        fingerprint = params.fingerprint(kind)
        after = self.store.commit(
            state, expected, turn, reply, fingerprint, result.events, loaded, result.presence
        )
        if after is not None:
            count(loaded.summary if loaded else CallSummary(state.sid), after, result.events)
            return reply
        # Another request of this call got there first (Twilio retried while we worked).
        stored = self.store.load_call(params.sid)
        if stored is None:
            raise FlowFault("call state vanished during commit")
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
            raise FlowFault(f"no answer kept for request {wanted} of call {params.sid}")
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
            return render([LeaveVerb()] if wanted else [RedirectVerb(self.urls.hold(language))])
        return render(hold_verbs(flow, language, hold, params, self.urls))

    def _hold_of(self, sid: str) -> tuple[Flow | None, Hold | None]:
        state = self.store.load_call(sid)
        if state is None:
            return None, None
        flowset = self.registry.version(state.version) or self.registry.current()
        flow = flowset.flows.get(state.flow) if flowset else None
        step = flow.steps.get(state.step) if flow else None
        action = step.action if step else None
        return flow, action.hold if isinstance(action, Route) else None

    def status(self, params: CallParams, at: float, batch: str = "") -> None:
        """Record Twilio's status callback for a call; its final status closes the record."""
        status = TwilioStatus(at, status=params.call_status, duration=params.call_duration)
        if params.call_status not in FINAL_STATUSES:
            self.store.record(params.sid, [status], spooled_id=batch)
            return
        self.close(params.sid, status, batch, self.unheard_start(params, at))

    def unheard_start(self, params: CallParams, at: float) -> CallStarted:
        """The start of a call heard of first by its final status (Twilio could not reach us,
        or its first webhook's write was lost): still a call, started `CallDuration` before,
        from and to what the status says."""
        flow = self._flow_for(params)
        name, language = (flow.name, flow.language) if flow else ("", "")
        return _started(params, at - (params.call_duration or 0), name, "", language)

    def close(
        self, sid: str, final: CallEvent, batch: str = "", unheard: CallStarted | None = None
    ) -> None:
        """Close a call's record with the event that ends it (a final status, or word that
        none came), then the call's end and outcome; once only. `unheard` starts the record of
        a call that has none."""
        closed: list[CallSummary] = []

        def closing(summary: CallSummary) -> list[CallEvent]:
            closed.clear()
            if summary.closed:
                return []  # a repeated final callback: the record is closed already
            added: list[CallEvent] = []
            if unheard is not None and summary.started_at is None:
                added.append(unheard)
                summary = fold(summary, added)
            closed.append(summary)
            ended = CallEnded(final.at, outcome=summary.outcome, duration=summary.duration)
            return [*added, ended]

        self.store.end_call(sid, final, closing, batch)
        for summary in closed:
            CALLS_ENDED.labels(summary.outcome).inc()

    def agent_answered(self, params: CallParams, pool: str, agent: str, at: float) -> None:
        """An agent picked up a call of ours (the status callback of the agent's leg)."""
        if params.call_status not in ("in-progress", "answered", ""):
            return
        self._answered_by(params.parent_sid or params.sid, pool, agent, at)

    def dequeued(self, sid: str, taker_sid: str, queue: str, at: float) -> None:
        """An agent took a waiting caller from the hold line: the caller is answered now, by
        the agent whose number the taking call came from (unknown when no pool lists it)."""
        taker = self.store.summary(taker_sid) if taker_sid else None
        flowset = self.registry.current()
        pools = flowset.pools if flowset else None
        found = pools.reached_at(taker.caller, queue) if pools and taker else None
        pool, agent = (found[0].name, found[1].id) if found else ("", "")
        if not found:
            log.info("call %s: taken from the hold line by a call no pool lists", sid)
        self._answered_by(sid, pool, agent, at)

    def _answered_by(self, sid: str, pool: str, agent: str, at: float) -> None:
        before = self.store.summary(sid) or CallSummary(sid)
        event = AgentAnswered(at, pool=pool[:64], agent=agent[:64])
        count(before, self.store.record(sid, [event]), [event])
        flowset = self.registry.current()
        pools = flowset.pools if flowset and flowset.pools else ()
        if not pools or pools.get(pool) is None:
            return
        # Who took the call goes to the back of the line, not only who was rung first: of
        # every longest-idle pool the agent (one person, by id) is in, not only this one.
        for line in pools:
            if line.strategy != "longest_idle" or not any(a.id == agent for a in line.agents):
                continue
            try:
                self.store.took_call(line.name, agent, at)
            except StoreUnavailable as exc:
                log.warning("pool %s: %s took a call, not kept for its line: %s", line.name,
                            agent, exc)  # fmt: skip

    def safe_reply(self, params: CallParams, language: str) -> str:
        """Apology, then the flow's fallback; needs no Redis and cannot fail."""
        return render(fallback_verbs(self._flow_for(params), language, self.urls))

    def _flow_for(self, params: CallParams) -> Flow | None:
        try:
            flowset = self.registry.current()
        except Exception:
            flowset = None
        return flowset.for_number(params.called) if flowset else None

    def _record_fallback(self, params: CallParams, kind: str, at: float, exc: Exception) -> None:
        events: list[CallEvent] = []
        if kind == "incoming":
            flow = self._flow_for(params)
            name, language = (flow.name, flow.language) if flow else ("", "")
            events.append(_started(params, at, name, "", language))
        reason = f"{type(exc).__name__}: {exc}"[:300]
        events.append(FallbackUsed(at, reason=reason, webhook=kind))
        self.record_quietly(params.sid, events)


def _started(params: CallParams, at: float, flow: str, version: str, language: str) -> CallStarted:
    return CallStarted(
        at,
        caller=params.caller,
        called=params.called,
        from_country=params.from_country,
        flow=flow,
        version=version,
        language=language,
    )


def count(before: CallSummary, after: CallSummary, events: Sequence[CallEvent]) -> None:
    """Metrics of what a write changed: calls started, routes, time to answer."""
    for event in events:
        if isinstance(event, CallStarted):
            CALLS_STARTED.labels(event.flow or "none").inc()
        elif isinstance(event, RouteDecided):
            ROUTES.labels(event.queue, event.chosen or "none").inc()
    if before.answered_at is None and after.answered_at is not None:
        wait = after.wait_seconds
        if wait is not None:
            ANSWER_SECONDS.labels(after.queue or "none").observe(wait)


def fallback_verbs(flow: Flow | None, language: str, urls: VoiceUrls = VOICE_URLS) -> list[Verb]:
    """What a caller hears when the call cannot go on normally."""
    if flow is not None and language not in flow.languages:
        language = flow.language
    language = language or "en-US"
    verbs: list[Verb] = [engine.say_phrase(flow, "apology", language)]
    step = flow.steps.get(flow.fallback) if flow and flow.fallback else None
    action = step.action if step else None
    if flow is not None and isinstance(action, Voicemail):
        recorded = urls.fallback("recorded", language)
        return verbs + engine.voicemail_verbs(flow, language, action, recorded, urls)
    if isinstance(action, Dial):
        return [*verbs, engine.dial_verb(action, urls.fallback("dial", language))]
    verbs += [engine.say_phrase(flow, "call_back_later", language), HangupVerb()]
    return verbs


def hold_verbs(
    flow: Flow | None, language: str, hold: Hold, params: CallParams, urls: VoiceUrls
) -> list[Verb]:
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
        action=urls.hold_key(language),
        prompts=tuple(prompts),
        num_digits=1,
        timeout=1,
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
