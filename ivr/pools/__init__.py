"""The agent pools of `pools.yaml`, validated into routing's frozen values with located problems.

Beyond the keys of the contract, a pool may have:
- `caller_id`: the E.164 number agents see calling them;
- under `holidays`: `subdivision` (a state or region code of the `holidays` package, with
  `country`), `closed: [{from: "2026-12-24 14:00", to: "2026-12-26 00:00"}]` cutting time out of
  the shifts, and `open: [{from: "2027-01-01 09:00", to: "2027-01-01 13:00"}]` adding on-shift time
  even on a holiday or in a closure — both in the pool's wall-clock time, `to` excluded.
An agent may have `languages` and an `id` (by default the name, lower-cased, spaces as `-`): agent
presence is kept under the id, so the same person in two pools shares one presence.
`days` is a day (`sat`), a range (`mon-fri`, wrapping as in `fri-mon`), `daily` or `all`, or a list
of those. Times are quoted "HH:MM"; `to` may be "24:00", the next midnight.

`reader` reads the file and its pools and agents; `schedule` their shifts and holidays.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ivr.errors import Problem
from ivr.pools.reader import PoolsReader
from ivr.yamlsource import Source, parse, read_text
from routing.model import Pools


def load_pools(path: Path) -> tuple[Pools | None, list[Problem]]:
    """Read and validate a pools file; the pools are None when any problem is an error."""
    text, problems = read_text(path, "the pools")
    if text is None:
        return None, problems
    source, problems = parse(text, str(path))
    if source is None:
        return None, problems
    pools, found = parse_pools(source)
    problems += found
    return (None if _has_errors(problems) else pools), problems


def parse_pools(source: Source) -> tuple[Pools | None, list[Problem]]:
    """Validate parsed `pools.yaml`; the pools are None when any problem is an error."""
    reader = PoolsReader(source)
    pools = reader.document()
    return (None if _has_errors(reader.problems) else pools), reader.problems


def unserved_queues(pools: Pools, queues: Iterable[str]) -> set[str]:
    """The queues among `queues` that no pool serves."""
    return set(queues) - pools.queues()


def _has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)
