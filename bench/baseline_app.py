"""The floors of the webhook bench: a bare Flask app answering constant TwiML, nothing else;
with `--redis`, the same app checking the signature and writing its answer to Redis in one
round trip first, which is the least any durable webhook must do.

They run under the very gunicorn settings of `ivr serve`, so the difference between them and it
is what the product does per request: signature check, Redis, flow engine, rendering.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl

from flask import Flask, Response, request
from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.commands.serve import GunicornServer, gunicorn_options
from ivr.redis_url import client
from ivr.voice.security import SignatureChecker

MENU_PROMPT = (
    "For billing and payments, press 1 or say billing. "
    "For technical support, press 2 or say technical support. "
    "For our opening hours, press 3. To hear these options again, press 9. "
    "To end the call, press 0."
)


def menu_document() -> bytes:
    """A menu answer of the usual shape: a Gather (keys and speech) with its prompt, a Redirect."""
    response = VoiceResponse()
    gather = Gather(
        action="/voice/input?turn=2&lang=en-US",
        method="POST",
        input="dtmf speech",
        num_digits=1,
        timeout=5,
        finish_on_key="#",
        action_on_empty_result=True,
        language="en-US",
        speech_timeout="auto",
        hints="billing, payment, technical support, opening hours, repeat, goodbye",
    )
    gather.say(MENU_PROMPT, language="en-US", voice="Google.en-US-Standard-C")
    response.append(gather)
    response.redirect("/voice/input?turn=2&lang=en-US", method="POST")
    return str(response).encode()


def create_app(
    documents: Mapping[str, bytes] | None = None, durable: Durable | None = None
) -> Flask:
    """The app: each /voice/ path answers its constant document (the menu one by default);
    with `durable`, only a signed request, once its answer is written to Redis."""
    default = menu_document()
    answers = dict(documents or {})
    app = Flask(__name__)

    @app.post("/voice/<name>")
    def voice(name: str) -> Response:
        answer = answers.get(f"{name}-{request.args.get('turn', '')}") or answers.get(name, default)
        if durable is not None and not durable.keep(answer):
            return Response("forbidden\n", 403, mimetype="text/plain")
        return Response(answer, mimetype="text/xml")

    @app.get("/readyz")
    def readyz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    return app


class Durable:
    """The second floor's work: the signature checked as the product checks it, then the
    answer written to Redis in one round trip, keyed by the call."""

    def __init__(self, token: str, redis_url: str) -> None:
        self.checker = SignatureChecker(token)
        self.redis = client(redis_url, 5.0)

    def keep(self, answer: bytes) -> bool:
        """Whether the request is Twilio's; if so its answer is in Redis when this returns."""
        query = request.query_string.decode("latin-1")
        url = f"{request.scheme}://{request.host}{request.path}" + (f"?{query}" if query else "")
        params = dict(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))
        if not self.checker.valid(url, params, request.headers.get("X-Twilio-Signature")):
            return False
        sid = params.get("CallSid", "")[:34]
        self.redis.set(f"floor:call:{{{sid}}}", answer, ex=3600)
        return True


def read_documents(folder: Path | None) -> dict[str, bytes]:
    """The answers kept as `<name>.xml` in `folder`, by webhook name (incoming, input, ...)."""
    if folder is None:
        return {}
    return {path.stem: path.read_bytes() for path in sorted(folder.glob("*.xml"))}


def main() -> None:
    """Serve the floor app under gunicorn with the settings of `ivr serve`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--twiml", type=Path, help="a folder of <webhook>.xml answers to serve as they are"
    )
    parser.add_argument(
        "--redis", help="a Redis URL: check signatures and write each answer there first"
    )
    args = parser.parse_args()
    documents = read_documents(args.twiml)
    options = gunicorn_options(args.host, args.port, args.workers, args.threads)
    token = os.environ.get("TWILIO_AUTH_TOKEN", "")
    url = args.redis

    def build() -> Flask:
        # Each worker opens its own Redis connection after the fork.
        return create_app(documents, Durable(token, url) if url else None)

    GunicornServer(build, options).run()


if __name__ == "__main__":
    main()
