"""The bearer-token check every /api/ blueprint runs before its views."""

from __future__ import annotations

import hmac

from flask import Response, current_app, jsonify, request

from ivr.services import Services


def require_api_token() -> tuple[Response, int] | None:
    """None when the request carries the API token; a 401 JSON answer otherwise."""
    services: Services = current_app.extensions["ivr"]
    token = services.settings.api_token
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if token and given and hmac.compare_digest(given.encode(), token.encode()):
        return None
    return jsonify(error="a valid API token is required (Authorization: Bearer ...)"), 401
