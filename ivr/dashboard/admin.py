"""The admins' page: the dashboard's users listed, added and removed from the browser.

The rules are those of `ivr users`: `Users.add` checks the name, role and password for both.
An admin cannot remove themself, so the page always leaves at least one admin able to use it.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as Redirect

from ivr.dashboard.users import MIN_PASSWORD_LENGTH, ROLES, UserError, normal_name
from ivr.dashboard.web import current_user, dashboard, requires

log = logging.getLogger(__name__)
bp = Blueprint("users", __name__, url_prefix="/users")


def _page(error: str = "", name: str = "", role: str = "viewer") -> str:
    people = dashboard().users.all()
    return render_template(
        "dashboard/users.html",
        people=people,
        roles=ROLES,
        min_password=MIN_PASSWORD_LENGTH,
        error=error,
        name=name,
        role=role,
    )


@bp.get("")
@requires("admin")
def index() -> str:
    """Every user with its role, a form to add one and a button to remove each."""
    return _page()


@bp.post("")
@requires("admin")
def add() -> Redirect | tuple[str, int]:
    """Add a user; the form again with the reason when it is refused."""
    form = request.form
    name, role, password = form.get("name", ""), form.get("role", ""), form.get("password", "")
    parts = dashboard()
    try:
        added = parts.users.add(name, role, password, parts.clock())
    except UserError as exc:
        return _page(str(exc), name.strip(), role), 400
    log.info("dashboard user %s (%s) added by %s", added.name, added.role, current_user().name)
    flash(f"Added {added.name} ({added.role}).")
    return redirect(url_for("dashboard.users.index"))


@bp.post("/<name>/remove")
@requires("admin")
def remove(name: str) -> Redirect:
    """Remove a user, ending its sessions; never the admin asking."""
    admin = current_user()
    try:
        target = normal_name(name)
    except UserError as exc:
        abort(404, str(exc))
    if target == admin.name:
        abort(400, "You cannot remove yourself: another admin can.")
    try:
        dashboard().users.remove(target)
    except UserError as exc:
        abort(404, str(exc))
    log.info("dashboard user %s removed by %s", target, admin.name)
    flash(f"Removed {target}.")
    return redirect(url_for("dashboard.users.index"))
