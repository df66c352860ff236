"""Transcripts: Twilio's own where it serves the language, else an OpenAI-compatible endpoint.

Twilio's `<Record transcribe="true">` transcribes English only (en-US, en-GB) and recordings of
at most two minutes; Vietnamese or Arabic callers are transcribed by the worker instead, from the
downloaded audio, through `POST {IVR_TRANSCRIBE_URL}/v1/audio/transcriptions`.
"""

from __future__ import annotations

from pathlib import Path

import requests

from ivr.tickets.model import Transcript
from ivr.tickets.recordings import CONTENT_TYPES

TWILIO_LANGUAGES = frozenset({"en-US", "en-GB"})
TWILIO_MAX_SECONDS = 120
TIMEOUT = (5.0, 120.0)


def twilio_transcribes(language: str, seconds: int | None = None) -> bool:
    """Whether Twilio's `<Record transcribe>` serves a caller's language (and length)."""
    if seconds is not None and seconds > TWILIO_MAX_SECONDS:
        return False
    return any(language.lower() == known.lower() for known in TWILIO_LANGUAGES)


class TranscriptionFailed(Exception):
    """The speech-to-text endpoint did not give a transcript this time."""


class TranscriptionClient:
    """An OpenAI-compatible speech-to-text endpoint (`/v1/audio/transcriptions`)."""

    SOURCE = "transcribe_url"

    def __init__(
        self,
        base_url: str,
        model: str = "whisper-1",
        session: requests.Session | None = None,
        api_key: str | None = None,
    ) -> None:
        # OpenAI's SDKs write the base URL with its /v1: taken either way.
        self.url = base_url.rstrip("/").removesuffix("/v1") + "/v1/audio/transcriptions"
        self.model = model
        self.session = session or requests.Session()
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def transcribe(self, audio: Path, language: str) -> Transcript:
        """The words of an audio file; `language` is a BCP 47 tag, sent as its ISO 639-1 part."""
        kind = audio.suffix.lstrip(".")
        iso639 = language.split("-")[0].lower()
        try:
            with open(audio, "rb") as body:
                answer = self.session.post(
                    self.url,
                    files={"file": (audio.name, body, CONTENT_TYPES.get(kind, "audio/wav"))},
                    data={"model": self.model, "language": iso639, "response_format": "json"},
                    headers=self.headers,
                    timeout=TIMEOUT,
                )
        except (requests.RequestException, OSError) as exc:
            raise TranscriptionFailed(str(exc)) from None
        if answer.status_code != 200:
            raise TranscriptionFailed(f"HTTP {answer.status_code}")
        try:
            text = answer.json()["text"]
        except (ValueError, KeyError, TypeError):
            raise TranscriptionFailed("the answer has no text") from None
        if not isinstance(text, str):
            raise TranscriptionFailed("the answer's text is not a string")
        if not text.strip():
            return Transcript(reason="the speech-to-text server heard no words")
        return Transcript(text.strip(), self.SOURCE)
