"""The supervisors' dashboard under /dashboard: server-rendered pages behind a login.

`init_app` is the one place it is wired into the app: secret key, session cookie, CSRF, users,
and the blueprints of each area.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from flask import Flask

from ivr.dashboard import admin, agents, auth, calls, coverage, kpis, tickets, wallboard
from ivr.dashboard.users import LoginLimiter, UserError, Users
from ivr.dashboard.web import Dashboard, bp, csrf
from ivr.services import Services
from ivr.settings import Settings, dev_token
from ivr.store import now

log = logging.getLogger(__name__)

DEV_USER = "dev"
DEV_PASSWORD_FILE = "dev-dashboard-password"
SECRET_KEY_FILE = "secret-key"
SESSION_HOURS = 12

AREAS = (auth.bp, wallboard.bp, agents.bp, coverage.bp, calls.bp, kpis.bp, tickets.bp, admin.bp)
for area in AREAS:
    bp.register_blueprint(area)


def init_app(app: Flask, services: Services) -> None:
    """Serve the dashboard from `app`, with users and counters in the services' Redis."""
    settings = services.settings
    # Every gunicorn worker must sign sessions with the same key: the environment's, or one
    # generated once into the data dir.
    app.secret_key = settings.secret_key or dev_token(settings.data_dir, SECRET_KEY_FILE)
    app.config.update(
        SESSION_COOKIE_NAME="ivr_dashboard",
        SESSION_COOKIE_PATH="/dashboard",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # A URL's scheme is case-insensitive: HTTPS://ivr.example.com is served over TLS too.
        SESSION_COOKIE_SECURE=(settings.public_url or "").strip().lower().startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        WTF_CSRF_CHECK_DEFAULT=False,  # only the dashboard's forms: webhooks and the API are not
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as its session (a wallboard stays open)
    )
    csrf.init_app(app)
    connection = services.store.redis
    app.extensions["dashboard"] = Dashboard(Users(connection), LoginLimiter(connection))
    app.register_blueprint(bp)
    if settings.dev:
        _ensure_dev_user(app.extensions["dashboard"].users, settings)


def dev_login(settings: Settings) -> tuple[str, str]:
    """The development supervisor's name and password (the password kept in the data dir)."""
    return DEV_USER, dev_token(settings.data_dir, DEV_PASSWORD_FILE)


def _ensure_dev_user(users: Users, settings: Settings) -> None:
    name, password = dev_login(settings)
    try:
        users.ensure(name, "supervisor", password, now())
    except UserError:
        pass  # another worker added it at the same moment, with the same password
    except redis.RedisError as exc:
        log.warning("dashboard: could not create the dev user, Redis unavailable: %s", exc)
