"""Twilio request signatures: every /voice/ request is checked before it is read."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping

from twilio.request_validator import RequestValidator


class SignatureChecker:
    """Checks X-Twilio-Signature against the URL Twilio called and the posted parameters."""

    def __init__(self, auth_token: str, public_url: str | None = None) -> None:
        self._validator = RequestValidator(auth_token)
        # HMAC keyed once; each check continues a copy. hmac.digest would key it afresh and, in
        # C, let go of the interpreter lock on every call: under load a webhook then waited for
        # another of the worker's threads to give the lock back, just to check its signature.
        # A copy's update keeps the lock for payloads under 2 KiB, Twilio's usual size.
        self._keyed = hmac.new(auth_token.encode(), digestmod="sha1")
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
        if hmac.compare_digest(self.signature(url, params), signature.encode()):
            return True
        return bool(self._validator.validate(url, dict(params), signature))

    def signature(self, url: str, params: Mapping[str, str]) -> bytes:
        """Twilio's signature of a request with one value per parameter: HMAC-SHA1 of the URL
        followed by each name and value, names sorted, in base64 (what the validator computes,
        in one step: this runs on every webhook)."""
        payload = url + "".join([name + params[name] for name in sorted(params)])
        mac = self._keyed.copy()
        mac.update(payload.encode())
        return base64.b64encode(mac.digest())

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """The signature Twilio would send, for the simulator and tests."""
        return str(self._validator.compute_signature(url, dict(params)))
