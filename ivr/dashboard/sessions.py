"""The dashboard's session cookie, opened only where there is one to open.

Flask's cookie sessions build a signing serializer on every request, even when no cookie came;
the cookie's path is /dashboard, so webhooks and the API never bring one and would pay that
for nothing on every Twilio request.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class DashboardSessions(SecureCookieSessionInterface):
    """Cookie sessions that skip the serializer when the request carries no session cookie."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """An empty session without a cookie; else the cookie's, checked as Flask does."""
        if app.secret_key and (
            "HTTP_COOKIE" not in request.environ
            or not request.cookies.get(self.get_cookie_name(app))
        ):
            return self.session_class()
        return super().open_session(app, request)
