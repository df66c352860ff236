"""The bearer-token check every /api/ blueprint runs before its views."""

from __future__ import annotations

import hmac

from flask import Response, current_app, jsonify, request

from ivr.services import Services


def require_api_token() -> tuple[Response, int] | None:
    """None when the request carries the API token; a 401 JSON answer otherwise."""
    services: Services = current_app.extensions["ivr"]
    token = services.settings.api_token
    given = _bearer(request.headers.get("Authorization", ""))
    if token and given and hmac.compare_digest(given.encode(), token.encode()):
        return None
    refused = jsonify(error="a valid API token is required (Authorization: Bearer ...)")
    # RFC 7235: a 401 names the scheme it wants.
    refused.headers["WWW-Authenticate"] = 'Bearer realm="ivr"'
    return refused, 401


def _bearer(header: str) -> str:
    """The token of an Authorization header; its scheme's name is case-insensitive (RFC 7235)."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return header.strip()  # a bare token, as earlier versions took it
    return token.strip()
