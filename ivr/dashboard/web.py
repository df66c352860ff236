"""The dashboard's frame: one parent blueprint that checks CSRF and sessions and sets headers.

Each area (sign-in, wallboard, agents, coverage) is a child blueprint of `bp`, so every page under
/dashboard inherits the gate: a POST without its CSRF token is refused before anything else, and
without a session every URL but the login form and the stylesheet redirects to the login form.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, wraps
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import redis
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as Redirect

from ivr.dashboard.masking import mask_number
from ivr.dashboard.users import LoginLimiter, User, Users
from ivr.errors import StoreUnavailable
from ivr.services import Services
from ivr.store import now

log = logging.getLogger(__name__)
csrf = CSRFProtect()
bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

OPEN_ENDPOINTS = {"dashboard.auth.login", "dashboard.static"}
SECURITY_HEADERS = {
    # No inline script or style anywhere: a page that sneaks one in simply does not run it.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; media-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Dashboard:
    """What the dashboard's requests share: users, the login limiter and the clock."""

    users: Users
    limiter: LoginLimiter
    clock: Callable[[], float] = field(default=now)


def dashboard() -> Dashboard:
    """The running app's dashboard parts."""
    return cast(Dashboard, current_app.extensions["dashboard"])


def services() -> Services:
    """The running app's services (store, flows)."""
    return cast(Services, current_app.extensions["ivr"])


def current_user() -> User:
    """The signed-in user of this request (the gate has checked there is one)."""
    return cast(User, g.user)


def signed_in() -> User | None:
    """The user the session names, if it still exists with the same epoch."""
    name, epoch, sid = session.get("user"), session.get("epoch"), session.get("id")
    if not isinstance(name, str) or not isinstance(epoch, str) or not isinstance(sid, str):
        return None
    user = dashboard().users.in_session(name, sid)
    return user if user is not None and user.epoch == epoch else None


def requires(role: str) -> Callable[[F], F]:
    """Let only users with `role` (or a higher one) through; 403 for the others."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not current_user().may(role):
                abort(403, f"this needs the {role} role")
            return view(*args, **kwargs)

        return cast(F, guarded)

    return decorate


@bp.before_request
def gate() -> Redirect | None:
    """CSRF on every POST, then a session for every page but the login form."""
    csrf.protect()
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    user = signed_in()
    if user is None:
        # The CSV export too: a browser then signs in and downloads it, as the login returns
        # to the URL asked for.
        return redirect(url_for("dashboard.auth.login", next=request.full_path.rstrip("?")))
    g.user = user
    g.zone_name = chosen_zone()
    return None


def chosen_zone() -> str:
    """The viewer's time zone: `?tz=` (kept in the session from then on), else the kept one."""
    asked = request.args.get("tz", "").strip()
    if asked:
        if asked not in time_zones():
            abort(400, f"unknown time zone {asked!r}: use a name such as Asia/Ho_Chi_Minh")
        session["tz"] = asked
        return asked
    kept = session.get("tz")
    return kept if isinstance(kept, str) and kept in time_zones() else "UTC"


@cache
def time_zones() -> tuple[str, ...]:
    """Every IANA zone name, sorted."""
    return tuple(sorted(zoneinfo.available_timezones()))


def zone() -> ZoneInfo:
    """The viewer's time zone."""
    return ZoneInfo(getattr(g, "zone_name", "UTC"))


@bp.after_request
def headers(response: Response) -> Response:
    """The security headers of every dashboard answer; pages are never cached."""
    response.headers.update(SECURITY_HEADERS)
    if request.endpoint != "dashboard.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_filter("local_time")
def local_time(seconds: float | None, pattern: str = "%a %d %b %H:%M") -> str:
    """An instant on the viewer's clock, with its zone's abbreviation."""
    if seconds is None:
        return "—"
    shown = datetime.fromtimestamp(seconds, zone())
    return f"{shown.strftime(pattern)} {shown.tzname()}"


@bp.app_template_filter("phone")
def phone(address: str) -> str:
    """A caller's or agent's number, masked unless the viewer may see it whole."""
    user = getattr(g, "user", None)
    return address if user is not None and user.may("supervisor") else mask_number(address)


@bp.context_processor
def frame() -> dict[str, Any]:
    """What every page's frame shows: the user, the time zone and the zones to choose from."""
    return {
        "user": getattr(g, "user", None),
        "zone_name": getattr(g, "zone_name", "UTC"),
        "time_zones": time_zones(),
    }


@bp.errorhandler(CSRFError)
def refused(error: CSRFError) -> tuple[str, int]:
    """A form posted without its token (or a stale one): refused, nothing changed."""
    return page_error(400, f"The form was refused: {error.description} Reload the page and retry.")


@bp.errorhandler(HTTPException)
# By code too: Flask tries handlers for the status code before handlers for a class, so the
# app's 404 handler (which keeps Flask's bare page outside /voice/ and /api/) would come first.
@bp.errorhandler(404)
def http_error(error: HTTPException) -> tuple[str, int]:
    """Errors as pages of the dashboard, with the reason given."""
    return page_error(error.code or 500, error.description or error.name)


@bp.errorhandler(redis.RedisError)
@bp.errorhandler(StoreUnavailable)  # the call records and presence say it so
def store_unavailable(error: redis.RedisError | StoreUnavailable) -> tuple[str, int]:
    """Users and presence live in Redis: without it, say so and change nothing."""
    log.warning("dashboard: Redis unavailable: %s", error)
    return page_error(503, "The dashboard's data is unavailable: Redis does not answer.")


def page_error(code: int, message: str) -> tuple[str, int]:
    """An error page in the dashboard's frame."""
    return render_template("dashboard/error.html", code=code, message=message), code


@bp.route("/")
def home() -> Redirect:
    """/dashboard/ (as people type it): the wallboard, behind the gate like every page."""
    return redirect(url_for("dashboard.wallboard.index"))


@bp.route("/<path:rest>")
def unknown(rest: str) -> str:
    """Any other dashboard URL: behind the gate like the rest, then not found."""
    abort(404, f"no dashboard page /dashboard/{rest}")
