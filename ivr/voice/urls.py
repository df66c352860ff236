"""The /voice/ paths Twilio reports back to, for the flow engine (which knows no web paths)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from ivr.twiml import TURN


@dataclass(frozen=True)
class VoiceUrls:
    """Relative URLs of the /voice/ blueprint; TURN stands for the call's next turn number.

    `prefix` is the path of IVR_PUBLIC_URL (`/ivr` for https://x.example.com/ivr): behind a
    proxy that serves the app under a path, Twilio resolves `/voice/...` against the host alone
    and would post every answer outside the app.
    """

    prefix: str = ""

    @classmethod
    def under(cls, public_url: str | None) -> VoiceUrls:
        """The URLs of an app Twilio reaches at `public_url` (its own root when None)."""
        return cls(urlsplit(public_url).path.rstrip("/") if public_url else "")

    def action(self, kind: str, language: str) -> str:
        """The action URL of a waiting verb: kind is "input", "dial", "recorded" or "queue"."""
        return f"{self.prefix}/voice/{kind}?turn={TURN}&lang={language}"

    def hold(self, language: str) -> str:
        """The wait URL of the hold line."""
        return f"{self.prefix}/voice/hold?lang={language}"

    def hold_key(self, language: str) -> str:
        """Where a key pressed in the hold line is reported."""
        return f"{self.prefix}/voice/hold/key?lang={language}"

    def recording(self) -> str:
        """The recording status callback."""
        return f"{self.prefix}/voice/recording"

    def transcription(self) -> str:
        """The transcription callback."""
        return f"{self.prefix}/voice/transcription"

    def answered(self, pool: str, agent: str) -> str:
        """The status callback telling that `agent` of `pool` picked up."""
        who = f"pool={quote(pool, safe='')}&agent={quote(agent, safe='')}"
        return f"{self.prefix}/voice/answered?{who}"

    def dequeued(self, queue: str) -> str:
        """Asked on a waiting caller's line as an agent takes it from the hold line."""
        return f"{self.prefix}/voice/dequeued?queue={quote(queue, safe='')}"

    def fallback(self, kind: str, language: str) -> str:
        """Where a fallback voicemail or dial reports; needs no stored state."""
        return f"{self.prefix}/voice/fallback?lang={language}&kind={kind}"


VOICE_URLS = VoiceUrls()
