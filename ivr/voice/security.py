"""Twilio request signatures: every /voice/ request is checked before it is read."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from twilio.request_validator import RequestValidator


class SignatureChecker:
    """Checks X-Twilio-Signature against the URL Twilio called and the posted parameters."""

    def __init__(self, auth_token: str, public_url: str | None = None) -> None:
        self._validator = RequestValidator(auth_token)
        self.public_url = public_url

    def url_for(self, request_url: str, path: str, query: str) -> str:
        """The URL Twilio signed: the public base + path + query when configured."""
        if not self.public_url:
            return request_url
        return self.public_url + path + (f"?{query}" if query else "")

    def valid(self, url: str, params: Mapping[str, str], signature: str | None) -> bool:
        """Whether `signature` is Twilio's for this URL and these parameters."""
        if not signature:
            return False
        # One HMAC for the usual case; the validator's full check (it also tries the URL with and
        # without its port) only when that does not match.
        expected = str(self._validator.compute_signature(url, params))
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return True
        return bool(self._validator.validate(url, dict(params), signature))

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """The signature Twilio would send, for the simulator and tests."""
        return str(self._validator.compute_signature(url, dict(params)))
