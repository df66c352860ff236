"""The agents API the dashboard uses: list agents, mark one away or available. Bearer token."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request

from ivr.agents.services import (
    AmbiguousAgent,
    BadStatus,
    UnknownAgent,
    list_agents,
    set_status,
)
from ivr.api.auth import require_api_token
from ivr.errors import StoreUnavailable
from ivr.services import Services

log = logging.getLogger(__name__)
bp = Blueprint("agents", __name__, url_prefix="/api/agents")


def _services() -> Services:
    services: Services = current_app.extensions["ivr"]
    return services


bp.before_request(require_api_token)  # only callers holding the API token read or change presence


@bp.errorhandler(StoreUnavailable)
def store_unavailable(error: StoreUnavailable) -> tuple[Response, int]:
    """Presence lives in Redis: without it, say so and change nothing."""
    log.warning("agents API: Redis unavailable: %s", error)
    return jsonify(error="agent presence is unavailable: Redis does not answer"), 503


@bp.get("")
def index() -> Response:
    """Every agent with its presence."""
    services = _services()
    flowset = services.registry.current()
    agents = list_agents(flowset.pools if flowset else None, services.store)
    return jsonify(agents=[a.as_dict() for a in agents])


@bp.put("/<agent_id>")
def update(agent_id: str) -> tuple[Response, int]:
    """Set one agent's presence from {"status": "available" | "away"}."""
    services = _services()
    # Read as JSON whatever the Content-Type says: `curl -d` sends a JSON body as a form.
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        return jsonify(error='the body must be a JSON object such as {"status": "away"}'), 400
    flowset = services.registry.current()
    try:
        view = set_status(flowset.pools if flowset else None, services.store, agent_id,
                          body["status"], by="api")  # fmt: skip
    except AmbiguousAgent as exc:
        return jsonify(error=str(exc)), 409
    except UnknownAgent as exc:
        return jsonify(error=str(exc)), 404
    except BadStatus as exc:
        return jsonify(error=str(exc)), 400
    log.info("agent %s is now %s (API)", agent_id, view.status)
    return jsonify(view.as_dict()), 200
