"""Agents per pool with their presence; supervisors mark them away or available."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as Redirect

from ivr.agents.services import STATUSES, UnknownAgent, list_agents, set_status
from ivr.dashboard.web import current_user, requires, services

log = logging.getLogger(__name__)
bp = Blueprint("agents", __name__, url_prefix="/agents")


@bp.get("")
def index() -> str:
    """Every pool's agents with their presence; buttons for those who may change it."""
    flowset = services().registry.current()
    pools = flowset.pools if flowset else None
    views = {view.id: view for view in list_agents(pools, services().store)}
    sections = [(pool, [views[a.id] for a in pool.agents]) for pool in pools or ()]
    return render_template("dashboard/agents.html", sections=sections)


@bp.post("/<agent_id>/status")
@requires("supervisor")
def change(agent_id: str) -> Redirect:
    """Mark one agent away or available, then back to the list."""
    status = request.form.get("status", "")
    if status not in STATUSES:
        abort(400, f"status must be one of {', '.join(STATUSES)}")
    flowset = services().registry.current()
    user = current_user()
    try:
        view = set_status(flowset.pools if flowset else None, services().store, agent_id,
                          status, by=f"dashboard:{user.name}")  # fmt: skip
    except UnknownAgent as exc:
        abort(404, str(exc))
    log.info("agent %s is now %s (dashboard, %s)", view.id, view.status, user.name)
    flash(f"{view.name} is now {view.status}.")
    return redirect(url_for("dashboard.agents.index"))
