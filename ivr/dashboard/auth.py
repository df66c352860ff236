"""Signing in and out of the dashboard: a login form, rate limited, and a logout form."""

from __future__ import annotations

import logging
import secrets

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response as Redirect

from ivr.dashboard.web import dashboard

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Redirect | tuple[str, int] | str:
    """The login form; a right name and password start a session."""
    target = safe_next(request.values.get("next", ""))
    if request.method == "GET":
        return render_template("dashboard/login.html", next=target, name="")
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    address = request.remote_addr or "unknown"
    parts = dashboard()
    wait = parts.limiter.blocked_for(name, address)
    if wait:
        log.warning("dashboard login refused for %r from %s: too many failures", name, address)
        message = f"Too many failed attempts. Try again in {-(-wait // 60)} minute(s)."
        return render_template("dashboard/login.html", next=target, name=name, error=message), 429
    user = parts.users.authenticate(name, password)
    if user is None:
        parts.limiter.failed(name, address)
        log.info("dashboard login failed for %r from %s", name, address)
        error = "Wrong name or password."
        return render_template("dashboard/login.html", next=target, name=name, error=error), 401
    parts.limiter.succeeded(name)
    session.clear()  # a fresh session (and CSRF token) for the signed-in user: no fixation
    session.update(user=user.name, epoch=user.epoch, id=secrets.token_hex(16))
    session.permanent = True
    log.info("dashboard login: %s (%s) from %s", user.name, user.role, address)
    return redirect(target or url_for("dashboard.wallboard.index"))


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Redirect | str:
    """GET asks to confirm (a link must not sign anyone out); POST ends the session."""
    if request.method == "GET":
        return render_template("dashboard/logout.html")
    sid = session.get("id")
    if isinstance(sid, str):
        # The cookie is signed, not stored: a copy of it would still open the dashboard.
        lifetime = current_app.permanent_session_lifetime.total_seconds()
        dashboard().users.end_session(sid, lifetime)
    session.clear()
    return redirect(url_for("dashboard.auth.login"))


def safe_next(target: str) -> str:
    """Where to go after signing in: a dashboard path on this site, never elsewhere."""
    inside = target.startswith("/dashboard") and not target.startswith("/dashboard/login")
    # No control characters either: a line break cannot go into the Location header (a 500
    # after a right password), and browsers drop tabs and breaks from URLs anyway.
    plain = target.isprintable()
    return target if inside and plain and "\\" not in target and "//" not in target else ""
