"""Voicemail tickets: a listing by status with the dead letters; supervisors retry them."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as Redirect

from ivr.dashboard.web import current_user, requires, services
from ivr.tickets.model import STATUSES, TicketError
from ivr.tickets.store import TicketStore

log = logging.getLogger(__name__)
bp = Blueprint("tickets", __name__, url_prefix="/tickets")
LIMIT = 200


def _store() -> TicketStore:
    return TicketStore(services().store.redis)


@bp.get("")
def index() -> str:
    """Tickets newest first, of one status or all (or the one `?id=` names), and the dead ones."""
    status = request.args.get("status", "").strip() or None
    if status is not None and status not in STATUSES:
        abort(400, f"status must be one of {', '.join(STATUSES)}")
    store = _store()
    wanted = request.args.get("id", "").strip()
    rows = [t for t in [store.get(wanted)] if t] if wanted else store.find(status, LIMIT)
    return render_template(
        "dashboard/tickets.html",
        rows=rows,
        dead=store.find("dead", LIMIT),
        counts=store.counts(),
        status=status or "",
        statuses=STATUSES,
        wanted=wanted,
    )


@bp.post("/<ticket_id>/retry")
@requires("supervisor")
def retry(ticket_id: str) -> Redirect:
    """Put one ticket back in the outbox, then back to the list."""
    try:
        ticket = _store().retry(ticket_id)
    except TicketError as exc:
        abort(404, str(exc))
    if ticket.status == "delivered":
        # Delivered meanwhile (the page was older than the worker's last round): the store
        # queued nothing, and saying otherwise would mislead, as `ivr tickets retry` says.
        flash(f"Ticket {ticket.id} is delivered to every sink: nothing to retry.")
        return redirect(url_for("dashboard.tickets.index"))
    log.info("ticket %s retried (dashboard, %s)", ticket.id, current_user().name)
    flash(f"Ticket {ticket.id} is queued again.")
    return redirect(url_for("dashboard.tickets.index"))


@bp.post("/retry-dead")
@requires("supervisor")
def retry_dead() -> Redirect:
    """Retry every dead ticket."""
    retried = _store().retry_dead()
    log.info("%d dead tickets retried (dashboard, %s)", len(retried), current_user().name)
    flash(f"{len(retried)} dead ticket(s) queued again.")
    return redirect(url_for("dashboard.tickets.index"))
