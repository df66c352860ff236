"""The /voice/ paths Twilio reports back to, for the flow engine (which knows no web paths)."""

from __future__ import annotations

from urllib.parse import quote

from ivr.twiml import TURN


class VoiceUrls:
    """Relative URLs of the /voice/ blueprint; TURN stands for the call's next turn number."""

    def action(self, kind: str, language: str) -> str:
        """The action URL of a waiting verb: kind is "input", "dial", "recorded" or "queue"."""
        return f"/voice/{kind}?turn={TURN}&lang={language}"

    def hold(self, language: str) -> str:
        """The wait URL of the hold line."""
        return f"/voice/hold?lang={language}"

    def hold_key(self, language: str) -> str:
        """Where a key pressed in the hold line is reported."""
        return f"/voice/hold/key?lang={language}"

    def recording(self) -> str:
        """The recording status callback."""
        return "/voice/recording"

    def transcription(self) -> str:
        """The transcription callback."""
        return "/voice/transcription"

    def answered(self, pool: str, agent: str) -> str:
        """The status callback telling that `agent` of `pool` picked up."""
        return f"/voice/answered?pool={quote(pool, safe='')}&agent={quote(agent, safe='')}"

    def dequeued(self, queue: str) -> str:
        """Asked on a waiting caller's line as an agent takes it from the hold line."""
        return f"/voice/dequeued?queue={quote(queue, safe='')}"

    def fallback(self, kind: str, language: str) -> str:
        """Where a fallback voicemail or dial reports; needs no stored state."""
        return f"/voice/fallback?lang={language}&kind={kind}"


VOICE_URLS = VoiceUrls()
