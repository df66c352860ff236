"""The floor of the webhook bench: a bare Flask app answering constant TwiML, nothing else.

It runs under the very gunicorn settings of `ivr serve`, so the difference between the two is
what the product does per request: signature check, Redis, flow engine, rendering.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from flask import Flask, Response
from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.commands.serve import GunicornServer, gunicorn_options

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


def create_app(documents: Mapping[str, bytes] | None = None) -> Flask:
    """The app: each /voice/ path answers its constant document (the menu one by default)."""
    default = menu_document()
    answers = dict(documents or {})
    app = Flask(__name__)

    @app.post("/voice/<name>")
    def voice(name: str) -> Response:
        return Response(answers.get(name, default), mimetype="text/xml")

    @app.get("/readyz")
    def readyz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    return app


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
    args = parser.parse_args()
    documents = read_documents(args.twiml)
    options = gunicorn_options(args.host, args.port, args.workers, args.threads)
    GunicornServer(lambda: create_app(documents), options).run()


if __name__ == "__main__":
    main()
