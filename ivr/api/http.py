"""The API: call records with a cursor, one call with its events, KPIs, tickets. Bearer token."""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ivr.api.auth import require_api_token
from ivr.calls.queries import kpi_report, parse_day, parse_instant, public_event
from ivr.calls.records import CallRecords
from ivr.calls.summary import INDEXED, OUTCOMES
from ivr.errors import BadQuery, StoreUnavailable
from ivr.services import Services
from ivr.tickets.model import STATUSES
from ivr.tickets.store import TicketStore

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api")
bp.before_request(require_api_token)


def _records() -> CallRecords:
    services: Services = current_app.extensions["ivr"]
    return CallRecords(services.store.redis)


@bp.errorhandler(BadQuery)
def bad_query(error: BadQuery) -> tuple[Response, int]:
    """A query that cannot be answered: say which part, change nothing."""
    return jsonify(error=str(error)), 400


@bp.errorhandler(StoreUnavailable)
def store_unavailable(error: StoreUnavailable) -> tuple[Response, int]:
    """Call records live in Redis: without it, say so."""
    log.warning("calls API: Redis unavailable: %s", error)
    return jsonify(error="call records are unavailable: Redis does not answer"), 503


def no_such_url(error: HTTPException) -> Response:
    """Under /api/ a URL or method that does not exist is answered in JSON, like the rest."""
    answer = jsonify(error=f"{error.name}: {request.method} {request.path}")
    answer.status_code = error.code or 404
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        answer.headers["Allow"] = ", ".join(error.valid_methods)
    return answer


@bp.get("/calls")
def calls() -> Response:
    """Calls newest first, filtered as `ivr calls`; `next` is the cursor of the next page."""
    args = request.args
    filters = {name: args[name] for name in INDEXED if args.get(name)}
    if "outcome" in filters and filters["outcome"] not in OUTCOMES:
        raise BadQuery(f"unknown outcome {filters['outcome']!r}: use {', '.join(OUTCOMES)}")
    if filters.get("caller", "").startswith(" "):
        filters["caller"] = "+" + filters["caller"][1:]  # an E.164 number's `+`, sent unencoded
    since, until = (_instant(args[k]) if args.get(k) else None for k in ("since", "until"))
    found, cursor = _records().find(since, until, filters, _number("limit", 50), args.get("cursor"))
    return jsonify(calls=[s.public() for s in found], next=cursor)


@bp.get("/calls/<sid>")
def call(sid: str) -> tuple[Response, int]:
    """One call and its events, oldest first."""
    found = _records().show(sid)
    if found is None:
        return jsonify(error=f"no call {sid} on record"), 404
    summary, events = found
    return jsonify({**summary.public(), "events": [public_event(e) for e in events]}), 200


@bp.get("/kpis")
def kpis() -> Response:
    """The options of `ivr kpis` as query parameters: from, to, by, threshold, tz."""
    args = request.args
    if not args.get("from") or not args.get("to"):
        raise BadQuery("from and to (YYYY-MM-DD) are required")
    report = kpi_report(
        _records(),
        parse_day(args["from"]),
        parse_day(args["to"]),
        args.get("by", "day"),
        _seconds("threshold", 20.0),
        args.get("tz", "UTC"),
    )
    return jsonify(report)


@bp.get("/tickets")
def tickets() -> Response | tuple[Response, int]:
    """Voicemail tickets newest first, as `ivr tickets --json`: `status` and `limit` filter."""
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadQuery(f"unknown status {status!r}: use {', '.join(STATUSES)}")
    limit = _number("limit", 100)
    if not 1 <= limit <= 10000:
        raise BadQuery(f"limit must be from 1 to 10000, not {limit}")
    services: Services = current_app.extensions["ivr"]
    try:
        found = TicketStore(services.store.redis).find(status, limit)
    except redis.RedisError as exc:
        log.warning("tickets API: Redis unavailable: %s", exc)
        return jsonify(error="tickets are unavailable: Redis does not answer"), 503
    return jsonify(tickets=[t.as_dict() for t in found])


def _instant(text: str) -> float:
    """An ISO-8601 instant of the query string, whose `+01:00` may have come as ` 01:00`."""
    try:
        return parse_instant(text)
    except BadQuery:
        before, space, offset = text.rpartition(" ")
        if not space:
            raise
    # A query string decodes an unencoded `+` as a space: the offset's sign, most likely.
    try:
        return parse_instant(f"{before}+{offset}")
    except BadQuery:
        return parse_instant(text)  # the error about what was sent


def _number(name: str, default: int) -> int:
    text = request.args.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise BadQuery(f"{name} must be a whole number, not {text!r}") from exc


def _seconds(name: str, default: float) -> float:
    text = request.args.get(name)
    if text is None or text == "":
        return default
    try:
        return float(text)
    except ValueError as exc:
        raise BadQuery(f"{name} must be a number of seconds, not {text!r}") from exc
