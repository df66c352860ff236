"""The call records: a filtered listing paged by cursor, its CSV export, one call's timeline,
and the voicemail's audio served from IVR_RECORDINGS_DIR (to supervisors: it is the caller's
voice, which viewers, who see numbers masked, do not hear either)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    render_template,
    request,
    send_file,
    stream_with_context,
)

from ivr.calls.events import CallEvent, to_dict
from ivr.calls.queries import csv_safe, parse_instant
from ivr.calls.records import CallRecords
from ivr.calls.summary import FIELDS, INDEXED, OUTCOMES, CallSummary
from ivr.dashboard.masking import mask_number
from ivr.dashboard.web import current_user, requires, services, zone
from ivr.errors import BadQuery
from ivr.tickets.model import RECORDING_SID

bp = Blueprint("calls", __name__)
PAGE = 50
CSV_PAGE = 1000  # calls read per round trip while the export streams
AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}
HIDDEN = ("v", "kind", "at", "passed_over")
LISTENERS = "supervisor"  # the role that may hear voicemails (and the roles above it)
# What a voicemail said, and where its audio lies, is for listeners only: (event kind, field).
VOICE_FIELDS = frozenset({("transcription", "text"), ("voicemail", "url")})


def _records() -> CallRecords:
    return CallRecords(services().store.redis)


def _query() -> tuple[float | None, float | None, dict[str, str]]:
    """The filters of `ivr calls` from the query string; 400 for one that is not valid."""
    args = request.args
    filters = {name: args[name].strip() for name in INDEXED if args.get(name, "").strip()}
    try:
        if filters.get("outcome", OUTCOMES[0]) not in OUTCOMES:
            raise BadQuery(f"unknown outcome {filters['outcome']!r}: use {', '.join(OUTCOMES)}")
        since, until = (_instant(args[k]) if args.get(k) else None for k in ("since", "until"))
    except BadQuery as exc:
        abort(400, str(exc))
    return since, until, filters


def _instant(text: str) -> float:
    """A filter's instant; written without an offset, it is on the viewer's clock, as the
    listing shows the calls (ivr calls, which has no such clock, reads it as UTC)."""
    value = parse_instant(text)  # the checks and the forms of `ivr calls --since`
    try:
        written = datetime.fromisoformat(text.strip())
    except ValueError:
        return value  # a form only parse_instant reads, which has an offset
    return value if written.tzinfo is not None else written.replace(tzinfo=zone()).timestamp()


def _find(limit: int, cursor: str | None) -> tuple[list[CallSummary], str | None]:
    since, until, filters = _query()
    try:
        return _records().find(since, until, filters, limit, cursor)
    except BadQuery as exc:
        abort(400, str(exc))


@bp.get("/calls")
def index() -> str:
    """Calls newest first with the filters of `ivr calls`; "older" pages on by cursor."""
    rows, cursor = _find(PAGE, request.args.get("cursor") or None)
    # Only the filters travel on, so no other parameter reaches url_for (e.g. `_external`).
    kept = {k: v for k, v in request.args.items() if k in (*INDEXED, "since", "until") and v}
    paged = bool(request.args.get("cursor"))  # an empty page after "Older calls": no older ones
    return render_template(
        "dashboard/calls.html", rows=rows, cursor=cursor, args=kept, outcomes=OUTCOMES, paged=paged
    )


@bp.get("/calls.csv")
def export() -> Response:
    """Every call the listing's filters match as CSV with the contract's field names, streamed a
    page at a time; numbers masked for viewers."""
    since, until, filters = _query()
    whole = current_user().may("supervisor")
    records = _records()
    # The first page is read before answering, so that a store that does not answer gets its
    # error page rather than a cut-off file.
    first = records.find(since, until, filters, CSV_PAGE, None)

    def lines() -> Iterator[str]:
        yield _csv_line(FIELDS)
        rows, cursor = first
        while True:
            for summary in rows:
                row = summary.public()
                if not whole:
                    row["from"], row["to"] = mask_number(row["from"]), mask_number(row["to"])
                yield _csv_line([csv_safe(row[name]) for name in FIELDS])
            if cursor is None:
                return
            rows, cursor = records.find(since, until, filters, CSV_PAGE, cursor)

    return Response(
        stream_with_context(lines()),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
    )


def _csv_line(cells: Iterable[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


def timeline(
    summary: CallSummary, events: list[CallEvent], listener: bool = True
) -> Iterator[dict[str, Any]]:
    """Each event with its seconds since the call started and its fields worth showing."""
    origin = summary.started_at if summary.started_at is not None else (
        events[0].at if events else 0.0
    )  # fmt: skip
    for event in events:
        data = to_dict(event)
        details = {
            k: ", ".join(map(str, v)) if isinstance(v, list | tuple) else v
            for k, v in data.items()
            if k not in HIDDEN and v not in (None, "", [], ())
            and (listener or (data["kind"], k) not in VOICE_FIELDS)
        }  # fmt: skip
        yield {"offset": event.at - origin, "kind": data["kind"], "event": event,
               "details": details}  # fmt: skip


@bp.get("/calls/<sid>")
def show(sid: str) -> str:
    """One call: its summary, then its timeline; a page of its own for a sid not on record."""
    found = _records().show(sid)
    if found is None:
        abort(404, f"no call {sid} on record")
    summary, events = found
    # A transcript is the caller's voice in words: a viewer learns only that there is one.
    transcripts = [e for e in events if e.kind == "transcription" and to_dict(e).get("text")]
    may_listen = current_user().may(LISTENERS)
    kept = may_listen and recording_file(summary.recording_sid) is not None
    return render_template(
        "dashboard/call.html",
        call=summary,
        steps=list(timeline(summary, events, may_listen)),
        may_listen=may_listen,
        audio=summary.recording_sid if kept else None,
        transcripts=transcripts if may_listen else [],
        transcribed=bool(transcripts),
    )


def recording_file(recording_sid: str | None) -> Path | None:
    """The kept audio of a recording, named from its validated sid alone, if it is on disk."""
    if not recording_sid or not RECORDING_SID.match(recording_sid):
        return None
    directory = services().settings.recordings_dir
    for kind in AUDIO_TYPES:
        path = directory / f"{recording_sid}.{kind}"
        if path.is_file():
            return path
    return None


@bp.get("/calls/<sid>/recording")
@requires(LISTENERS)
def recording(sid: str) -> Response:
    """The call's voicemail audio, streamed; the file comes from the record, not the request."""
    found = _records().show(sid)
    path = recording_file(found[0].recording_sid) if found else None
    if path is None:
        abort(404, f"no recording kept for call {sid}")
    kind = path.suffix.lstrip(".")
    return send_file(path, mimetype=AUDIO_TYPES[kind], conditional=True, max_age=0)
