"""The Flask app factory: the one place the web app is wired."""

from __future__ import annotations

import logging
import os

import redis
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from ivr import dashboard
from ivr.agents.http import bp as agents_bp
from ivr.api.http import bp as api_bp
from ivr.api.http import no_such_url as api_no_such_url
from ivr.dashboard.sessions import DashboardSessions
from ivr.errors import StoreUnavailable
from ivr.metrics import declare_series, exposition
from ivr.services import Services
from ivr.settings import Settings
from ivr.store import connect
from ivr.voice.http import bp as voice_bp
from ivr.voice.http import misrouted as voice_misrouted

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024  # Twilio's webhooks are a few kilobytes; anything larger is refused


def create_app(settings: Settings | None = None, connection: redis.Redis | None = None) -> Flask:
    """Build the app from `settings` (the environment by default)."""
    settings = (settings or Settings.from_env()).require_auth_token()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    if settings.trust_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)  # type: ignore[method-assign]
    services = Services.build(settings, connection or connect(settings))
    app.extensions["ivr"] = services
    services.registry.refresh()
    declare_series()
    if settings.housekeeping:
        from ivr.calls.housekeeping import Housekeeper

        Housekeeper(services).start()
    app.register_blueprint(voice_bp)
    app.register_blueprint(agents_bp)
    dashboard.init_app(app, services)
    app.session_interface = DashboardSessions()
    app.register_blueprint(api_bp)

    @app.errorhandler(404)
    @app.errorhandler(405)
    def no_such_url(error: HTTPException) -> Response | HTTPException:
        # Twilio's webhooks and the API answer in their own formats; the pages keep Flask's.
        if request.path.startswith("/voice/"):
            return voice_misrouted(error)
        if request.path.startswith("/api/"):
            return api_no_such_url(error)
        return error

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/metrics")
    def metrics() -> Response:
        try:
            waiting: int | None = services.store.waiting_count()
        except StoreUnavailable:
            waiting = None
        body, content_type = exposition(waiting)
        return Response(body, headers={"Content-Type": content_type})

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        flowset = services.registry.current()
        errors = [str(p) for p in services.registry.errors]
        try:
            redis_ok = services.store.ping()
        except StoreUnavailable as exc:
            log.warning("readyz: Redis unavailable: %s", exc)
            redis_ok = False
        ready = redis_ok and flowset is not None
        body = jsonify(
            ready=ready,
            redis=redis_ok,
            flows_version=flowset.version if flowset else None,
            flows=sorted(flowset.flows) if flowset else [],
            errors=errors,
            pid=os.getpid(),  # which worker answered: each reloads the flows on its own
        )
        return body, 200 if ready else 503

    return app
