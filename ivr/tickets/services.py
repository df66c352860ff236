"""What the voice edge calls: a voicemail in (callback or Record action), a transcript in."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

import redis

from ivr.tickets.model import PoolTried, Ticket, TicketError, Transcript, Voicemail
from ivr.tickets.store import TicketStore

log = logging.getLogger(__name__)


def voicemail_from_twilio(
    params: Mapping[str, str],
    at: datetime,
    flow: str = "",
    language: str = "",
    queue: str = "",
    pools_tried: Iterable[tuple[str, str]] = (),
    pool_zones: Mapping[str, str] | None = None,
) -> Voicemail:
    """The facts of a voicemail from the parameters of Twilio's Record action or callback."""
    duration = (params.get("RecordingDuration") or "").strip()
    return Voicemail(
        call_sid=params.get("CallSid", ""),
        recording_sid=params.get("RecordingSid", ""),
        recording_url=params.get("RecordingUrl", ""),
        seconds=int(duration) if duration.isdigit() else None,
        recording_status=params.get("RecordingStatus") or "completed",
        from_=params.get("From") or params.get("Caller") or "",
        to=params.get("To") or params.get("Called") or "",
        at=at,
        flow=flow,
        language=language,
        queue=queue,
        pools_tried=tuple(PoolTried(pool, reason) for pool, reason in pools_tried),
        caller_country=params.get("FromCountry") or params.get("CallerCountry") or None,
        pool_zones=dict(pool_zones or {}),
    )


class TicketService:
    """Tickets from the voice webhooks' point of view."""

    def __init__(self, connection: redis.Redis) -> None:
        self.store = TicketStore(connection)

    def voicemail(self, facts: Voicemail) -> Ticket | None:
        """The voicemail's ticket, made once however often Twilio reports it (None: empty)."""
        made = self.store.create(facts)
        if made is None:
            return None
        ticket, created = made
        if created:
            log.info("ticket %s for %s from %s", ticket.id, facts.recording_sid, facts.from_)
        return ticket

    def transcribed(self, params: Mapping[str, str]) -> Ticket | None:
        """Keep Twilio's transcription (its transcribeCallback) on the recording's ticket."""
        recording_sid = params.get("RecordingSid", "")
        ticket = self.store.by_recording(recording_sid)
        if ticket is None:
            raise TicketError(f"no ticket for recording {recording_sid!r}")
        status = params.get("TranscriptionStatus", "")
        text = (params.get("TranscriptionText") or "").strip()
        if status == "completed" and text:
            self.store.set_transcript(ticket.id, Transcript(text, "twilio"))
        elif status == "completed":
            reason = "Twilio's transcription heard no words"
            self.store.set_transcript(ticket.id, Transcript(reason=reason))
        else:
            reason = f"Twilio's transcription {status or 'failed'}"
            self.store.set_transcript(ticket.id, Transcript(reason=reason))
        return self.store.get(ticket.id)
