"""The /voice/ webhooks: parse, check, hand to the call service, answer TwiML."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from ivr.calls.events import CallEvent, DialEnded, TwilioStatus
from ivr.calls.spool import new_batch_id
from ivr.calls.summary import FINAL_STATUSES
from ivr.errors import BadRequest, StoreUnavailable
from ivr.metrics import WEBHOOKS
from ivr.redis_url import end_time_limit, start_time_limit
from ivr.services import Services
from ivr.twiml import render
from ivr.voice.params import parse_form, parse_params
from ivr.voice.services import fallback_done, fallback_verbs

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/voice")


def _services() -> Services:
    services: Services = current_app.extensions["ivr"]
    return services


def twiml(document: str, status: int = 200) -> Response:
    """A TwiML answer."""
    return Response(document, status=status, mimetype="text/xml")


# Every Twilio request passes here first, so each context-local proxy (request, g, current_app)
# is resolved once: each use of one costs a lookup.


@bp.before_request
def limit_and_check() -> Response | None:
    """A caller is listening: give the webhook a bounded amount of Redis time in all, after
    which it answers without Redis (the fallback, events spooled to disk); and refuse any
    request not signed by Twilio with our auth token, before reading it."""
    services = _services()
    here = g._get_current_object()
    here.redis_time_limit = start_time_limit(services.settings.webhook_redis_seconds)
    return refused_unless_signed(services, request.path.removeprefix("/voice/"))


def refused_unless_signed(services: Services, kind: str) -> Response | None:
    """None for a request Twilio signed with our auth token; else the 403 that refuses it,
    counted under `kind` (a webhook's name: a bounded set of labels)."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    checker = services.signatures
    path = req.path
    query = req.query_string.decode("latin-1")
    # The URL as requested (scheme and host as seen, or as forwarded when the proxy is trusted),
    # built directly: Request.url re-encodes it as an IRI, which costs more than the whole check.
    url = f"{req.scheme}://{req.host}{path}" + (f"?{query}" if query else "")
    url = checker.url_for(url, path, query)
    params = _form() if req.method == "POST" else {}
    if checker.valid(url, params, req.headers.get("X-Twilio-Signature")):
        return None
    log.warning("refused %s %s: missing or bad Twilio signature", req.method, url)
    WEBHOOKS.labels(kind, "refused").inc()
    return Response("forbidden: bad or missing X-Twilio-Signature\n", 403, mimetype="text/plain")


@bp.teardown_request
def lift_redis_time_limit(error: BaseException | None) -> None:
    token = g.pop("redis_time_limit", None)
    if token is not None:
        end_time_limit(token)


@bp.errorhandler(BadRequest)
def bad_request(error: BadRequest) -> Response:
    """A request we cannot act on: 400, with words for a caller all the same."""
    log.warning("bad webhook %s: %s", request.path, error)
    WEBHOOKS.labels(request.path.removeprefix("/voice/"), "bad_request").inc()
    return twiml(render(fallback_verbs(None, _lang(), _services().voice.urls)), 400)


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    """Oversized or misrouted requests still answer TwiML."""
    return twiml(render(fallback_verbs(None, _lang(), _services().voice.urls)), error.code or 400)


def misrouted(error: HTTPException) -> Response:
    """A /voice/ URL or method that does not exist (the app's 404 and 405): refused like any
    other unsigned request, and answered in TwiML when signed."""
    services = _services()
    # Counted as "unknown": a label per made-up path would let anyone grow /metrics at will.
    kind = "unknown" if error.code == 404 else request.path.removeprefix("/voice/")
    refusal = refused_unless_signed(services, kind)
    if refusal is not None:
        return refusal
    log.warning("no webhook at %s %s", request.method, request.path)
    return twiml(render(fallback_verbs(None, _lang(), services.voice.urls)), error.code or 404)


@bp.errorhandler(Exception)
def internal_error(error: Exception) -> Response:
    """Whatever escaped the service: never a 5xx to Twilio."""
    log.exception("webhook %s failed", request.path, exc_info=error)
    return twiml(render(fallback_verbs(None, _lang(), _services().voice.urls)))


def _lang() -> str:
    return request.args.get("lang", "")[:16]


def _form() -> dict[str, str]:
    """The webhook's parameters, parsed once per request."""
    here = g._get_current_object()
    params: dict[str, str] | None = here.get("params")
    if params is None:
        req = request._get_current_object()  # type: ignore[attr-defined]
        if req.method != "POST":
            params = req.args.to_dict()
        elif req.mimetype == "application/x-www-form-urlencoded":
            # Twilio's form posts, without the general form parser (MultiDicts, streams).
            params = parse_form(req.get_data(as_text=True))
        else:
            params = req.form.to_dict(flat=True)
        here.params = params
    return params


def _turn() -> int:
    raw = request.args.get("turn", "")
    if not raw.isdigit() or len(raw) > 6:
        raise BadRequest("turn is missing or malformed")
    return int(raw)


@bp.route("/incoming", methods=["POST", "GET"])
def incoming() -> Response:
    """The number's Voice URL: a new call."""
    params = parse_params(_form())
    services = _services()
    return twiml(services.voice.answer(params, "incoming", 0, services.clock()))


@bp.route("/<any(input, dial, recorded, queue):kind>", methods=["POST"])
def resume(kind: str) -> Response:
    """Gather, Dial and Record actions: the call goes on."""
    params = parse_params(_form())
    services = _services()
    at = services.clock()
    reply = services.voice.answer(params, kind, _turn(), at, _lang())
    if kind == "recorded":
        services.keep_voicemail(params, at)
    return twiml(reply)


@bp.route("/hold", methods=["POST"])
def hold() -> Response:
    """The hold queue's wait URL: announcements and music while the caller waits in line."""
    params = parse_params(_form())
    return twiml(_services().voice.hold(params, _lang(), key_pressed=False))


@bp.route("/hold/key", methods=["POST"])
def hold_key() -> Response:
    """A key pressed while waiting in line: leave for voicemail, or keep waiting."""
    params = parse_params(_form())
    return twiml(_services().voice.hold(params, _lang(), key_pressed=True))


@bp.route("/status", methods=["POST"])
def status() -> Response:
    """The call's status callback."""
    params = parse_params(_form())
    services = _services()
    at = services.clock()
    batch = new_batch_id()  # a write landing after its timeout is not replayed again
    try:
        services.voice.status(params, at, batch)
    except StoreUnavailable:
        event = TwilioStatus(at, status=params.call_status, duration=params.call_duration)
        kept: list[CallEvent] = [event]
        if params.call_status in FINAL_STATUSES:
            # Replayed, it closes the call; and starts its record if Redis never had one.
            kept.append(services.voice.unheard_start(params, at))
        services.spool_quietly(params.sid, kept, batch)
    except Exception:
        log.exception("call %s: status %s not recorded", params.sid, params.call_status)
    return twiml(render([]))


@bp.route("/answered", methods=["POST"])
def answered() -> Response:
    """An agent's leg was answered: who picked up, and when."""
    params = parse_params(_form())
    pool, agent = request.args.get("pool", ""), request.args.get("agent", "")
    try:
        _services().voice.agent_answered(params, pool, agent, _services().clock())
    except Exception:
        log.exception("call %s: answer by %s/%s not recorded", params.parent_sid, pool, agent)
    return twiml(render([]))


@bp.route("/dequeued", methods=["POST"])
def dequeued() -> Response:
    """An agent's call takes a caller waiting in the hold line (the queue's url, asked on the
    caller's line just before the two are connected): the caller is answered."""
    form = _form()
    params = parse_params(form)
    # Twilio's reference spells the parameter both ways.
    taker = form.get("DequeingCallSid") or form.get("DequeueingCallSid") or ""
    try:
        services = _services()
        services.voice.dequeued(params.sid, taker, request.args.get("queue", ""), services.clock())
    except Exception:
        log.exception("call %s: taken from the hold line, not recorded", params.sid)
    return twiml(render([]))


@bp.route("/fallback", methods=["POST"])
def fallback() -> Response:
    """The end of a fallback voicemail or dial; needs no stored state."""
    params = parse_params(_form())
    kind = request.args.get("kind", "")
    at = _services().clock()
    services = _services()
    flowset = services.registry.current()
    flow = flowset.for_number(params.called) if flowset else None
    event: CallEvent
    if kind == "recorded":
        event = params.voicemail(at, "fallback")
    else:
        event = DialEnded(
            at, number="fallback", status=params.dial_status, seconds=params.dial_seconds
        )
    services.record_quietly(params.sid, [event])
    if kind == "recorded":
        # As after a normal voicemail: the recording callback is not the only way to a ticket.
        try:
            services.keep_voicemail(params, at, "fallback")
        except Exception:  # the last resort answers whatever happens
            log.exception("call %s: no ticket from the fallback voicemail", params.sid)
    return twiml(render(fallback_done(flow, kind, params, _lang())))


@bp.route("/<any(recording, transcription):kind>", methods=["POST"])
def recording_callback(kind: str) -> Response:
    """Recording and transcription callbacks: kept with the call."""
    params = parse_params(_form())
    _services().keep_recording_event(kind, params, _services().clock(), _form())
    return twiml(render([]))
