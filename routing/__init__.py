"""Follow-the-sun routing: which agent pool is on shift, in its own time zone, at an instant.

Pure: the pools, the instant (an aware datetime) and agent availability are arguments; nothing here
reads the clock, a file, Redis or the web. `ivr.pools` builds the pools from `pools.yaml`.
"""

from routing.coverage import gaps
from routing.decide import (
    Away,
    Candidate,
    Decision,
    PassedOver,
    Skipped,
    decide,
    everyone_available,
    why_not,
)
from routing.model import Agent, Pool, Pools, Shift
from routing.shifts import spans

__all__ = [
    "Agent",
    "Away",
    "Candidate",
    "Decision",
    "PassedOver",
    "Pool",
    "Pools",
    "Shift",
    "Skipped",
    "decide",
    "everyone_available",
    "gaps",
    "spans",
    "why_not",
]
