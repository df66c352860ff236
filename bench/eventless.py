"""`ivr serve` with the call events switched off, for the webhook bench only.

`python -m bench.eventless serve ...` takes the options of `ivr serve`; it installs, before the
app is built, a Store whose `commit` keeps the call's state and reply but writes none of the
turn's events (no timeline, summary, stream nor index writes), and whose callbacks write
nothing. The difference between this server and `ivr serve` on the same webhook is what writing
the events costs. Nothing in the product reads this module: `ivr serve` is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ivr.services
from ivr.calls.events import CallEvent
from ivr.calls.summary import CallSummary
from ivr.cli import main as ivr_main
from ivr.flows.state import CallState
from ivr.store import Loaded, Store


class EventlessStore(Store):
    """The product's Store, except that a turn's commit drops its events."""

    def commit(
        self,
        state: CallState,
        expected_turn: int | None,
        answered_turn: int,
        reply: str,
        request_input: str,
        events: Sequence[CallEvent] = (),
        before: Loaded | None = None,
        presence: str | None = None,
    ) -> CallSummary | None:
        """Store the state and reply as `Store.commit` does, without the events."""
        return super().commit(
            state, expected_turn, answered_turn, reply, request_input, (), before, presence
        )

    def record(
        self,
        sid: str,
        events: Sequence[CallEvent],
        spooled_id: str = "",
        then: Callable[[CallSummary], Sequence[CallEvent]] | None = None,
    ) -> CallSummary:
        """Nothing: callbacks' events are not written either (a status callback of a call
        with no record would otherwise start one)."""
        return CallSummary(sid)

    def end_call(
        self,
        sid: str,
        status: CallEvent,
        closing: Callable[[CallSummary], Sequence[CallEvent]],
        spooled_id: str = "",
    ) -> CallSummary:
        """Nothing, as `record`."""
        return CallSummary(sid)


def main() -> None:
    """Run the `ivr` command line with the eventless Store installed."""
    # Services.build looks the Store class up in its module when the app is built, in each
    # gunicorn worker forked from this process.
    ivr.services.Store = EventlessStore  # type: ignore[misc]
    ivr_main()


if __name__ == "__main__":
    main()
