"""The wallboard: pools on shift, agents available and away, the next coverage gaps."""

from __future__ import annotations

from flask import Blueprint, render_template

from ivr.dashboard.board import LOOK_AHEAD_SECONDS, next_gaps, pools_now
from ivr.dashboard.web import dashboard, services
from routing.model import Pools

bp = Blueprint("wallboard", __name__)


@bp.get("")
def index() -> str:
    """The wallboard, at this instant, on the viewer's clock."""
    at = dashboard().clock()
    flowset = services().registry.current()
    pools = (flowset.pools if flowset else None) or Pools()
    rows = pools_now(pools, services().store.away(), at)
    return render_template(
        "dashboard/wallboard.html",
        at=at,
        pools=rows,
        gaps=next_gaps(pools, at),
        look_ahead_days=LOOK_AHEAD_SECONDS // 86400,
    )
