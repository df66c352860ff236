"""`ivr serve` at its edges: forwarded headers only behind a trusted proxy, broken flow files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.conftest import HttpCaller, copy_sample_flows, running_server

pytestmark = pytest.mark.server


def _post_signed_for(caller: HttpCaller, url: str, proto: str) -> int:
    """POST /voice/incoming signed for `url`, claiming `proto` in X-Forwarded-Proto."""
    signature = caller.checker.sign(url, caller.params)
    headers = {"X-Twilio-Signature": signature, "X-Forwarded-Proto": proto}
    return caller.send("/voice/incoming", caller.params, headers).status_code


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted"])
def test_forwarded_proto_counts_only_behind_a_trusted_proxy(tmp_path: Path, trusted: bool) -> None:
    env = {"IVR_TRUST_PROXY": "1"} if trusted else {}
    with running_server(tmp_path, copy_sample_flows(tmp_path / "flows"), 1, env=env) as server:
        plain = server.base + "/voice/incoming"
        secure = plain.replace("http://", "https://")
        caller = server.caller()
        try:
            if trusted:
                assert _post_signed_for(caller, secure, "https") == 200
                assert _post_signed_for(server.caller(), plain, "https") == 403
            else:
                assert _post_signed_for(caller, plain, "https") == 200
                assert _post_signed_for(server.caller(), secure, "https") == 403
        finally:
            caller.close()
