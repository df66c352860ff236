"""The app a worker of `ivr serve` builds for itself."""

from __future__ import annotations

import gc

from ivr.commands.serve import build_app
from ivr.settings import Settings


def test_a_workers_app_is_left_out_of_the_cyclic_collector(settings: Settings) -> None:
    # The flows, pools and modules live as long as the worker: a full collection walking them
    # paused the webhook that set it off for tens of milliseconds.
    gc.unfreeze()
    try:
        app = build_app(settings)

        assert gc.get_freeze_count() > 0
        assert app.extensions["ivr"].registry.current() is not None
    finally:
        gc.unfreeze()
