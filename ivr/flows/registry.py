"""The flow versions a worker serves, reloaded when ops edit the files.

Every worker looks at the files' sizes and times at most once per interval, and parses them only
when those changed. A broken edit is logged and reported, and the last good version keeps serving.
A version is named by the hash of its files and kept in Redis, so a call keeps the version it
started with even on a worker (or host) that never read those files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.config import load_config, read_config_files
from ivr.errors import Problem
from ivr.flows.model import Flow

if TYPE_CHECKING:
    from routing.model import Pools

log = logging.getLogger(__name__)

KEEP_VERSIONS = 8
REMARK_SECONDS = 3600.0  # the good version is marked again hourly, which keeps its YAML in Redis


@dataclass(frozen=True)
class FlowSet:
    """One consistent version of every flow and the pools, as loaded from the files."""

    version: str
    flows: Mapping[str, Flow]
    pools: Pools | None = None
    problems: tuple[Problem, ...] = ()
    texts: Mapping[str, str] = field(default_factory=dict)

    def for_number(self, called: str) -> Flow | None:
        """The flow answering `called`, else the default flow, else None."""
        fallback = None
        for flow in self.flows.values():
            if called in flow.numbers:
                return flow
            if flow.default and fallback is None:
                fallback = flow
        return fallback


def build_flowset(
    texts: Mapping[str, str], base: Path | None = None
) -> tuple[FlowSet | None, list[Problem]]:
    """Parse and validate a set of files (name -> YAML text); None when any error is found."""
    config = load_config(texts, base=base)
    flows, pools, problems = config.flows, config.pools, config.problems
    if not config.ok:
        return None, problems
    version = _version(texts)
    return FlowSet(version, flows, pools, tuple(problems), dict(texts)), problems


def _version(texts: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(texts):
        digest.update(name.encode() + b"\0" + texts[name].encode() + b"\0")
    return digest.hexdigest()[:16]


class FlowRegistry:
    """The current flow version of a directory, and older ones for calls still using them."""

    def __init__(
        self,
        flows_dir: Path,
        interval: float = 1.0,
        save: Callable[[str, Mapping[str, str]], None] | None = None,
        fetch: Callable[[str], Mapping[str, str] | None] | None = None,
    ) -> None:
        self.flows_dir = flows_dir
        self.interval = interval
        self._save = save
        self._fetch = fetch
        self._lock = threading.Lock()
        self._versions: OrderedDict[str, FlowSet] = OrderedDict()
        self._current: FlowSet | None = None
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._checked_at = float("-inf")
        self._saved: set[str] = set()
        self._mark_good: Callable[[str], None] | None = None
        self._marked: str | None = None
        self._marked_at = float("-inf")
        self.errors: list[Problem] = []

    def current(self) -> FlowSet | None:
        """The newest good version, reloading first if the files changed."""
        if time.monotonic() - self._checked_at >= self.interval:
            self.refresh()
        return self._current

    def refresh(self) -> None:
        """Look at the files now and reload them if they changed."""
        with self._lock:
            self._checked_at = time.monotonic()
            signature = _signature(self.flows_dir)
            if signature == self._signature:
                self._persist_current()
                return
            self._signature = signature
            try:
                texts, unreadable = read_config_files(self.flows_dir)
            except OSError as exc:
                unreadable = [Problem(str(self.flows_dir), 1, 1, f"cannot read flows: {exc}")]
            if unreadable:
                self.errors = unreadable
                log.error("flows not reloaded:\n%s", "\n".join(str(p) for p in unreadable))
                return
            flowset, problems = build_flowset(texts, self.flows_dir)
            if flowset is None:
                self.errors = [p for p in problems if p.severity == "error"]
                log.error(
                    "flows in %s not loaded, %s still serving:\n%s",
                    self.flows_dir,
                    self._current.version if self._current else "nothing",
                    "\n".join(str(p) for p in self.errors),
                )
                return
            self.errors = []
            for warning in problems:
                log.warning("%s", warning)
            if self._current is None or flowset.version != self._current.version:
                log.info("serving flows version %s", flowset.version)
            self._current = flowset
            self._remember(flowset)
            self._persist_current()

    def keep_good_versions(self, mark: Callable[[str], None]) -> None:
        """Report every version loaded from good files to `mark` (the current one at once)."""
        self._mark_good = mark
        with self._lock:
            self._persist_current()

    def fall_back_to(self, version: str) -> FlowSet | None:
        """Serve a version kept in Redis while nothing from the files has loaded."""
        flowset = self.version(version)
        if flowset is None:
            return None
        with self._lock:
            if self._current is None:
                self._current = flowset
                log.error(
                    "flows in %s do not load: serving the last good version %s until fixed",
                    self.flows_dir,
                    version,
                )
        return self._current

    def version(self, version: str) -> FlowSet | None:
        """A given version: from memory, else rebuilt from the copy kept in Redis."""
        found = self._versions.get(version)
        if found is not None:
            return found
        texts = self._fetch(version) if self._fetch else None
        if texts is None:
            return None
        flowset, _ = build_flowset(texts, self.flows_dir)
        if flowset is not None:
            with self._lock:
                self._remember(flowset)
        return flowset

    def _remember(self, flowset: FlowSet) -> None:
        self._versions[flowset.version] = flowset
        self._versions.move_to_end(flowset.version)
        while len(self._versions) > KEEP_VERSIONS:
            self._versions.popitem(last=False)

    def _persist_current(self) -> None:
        # Retried on later checks until it works: Redis may be down when the files change.
        flowset = self._current
        if flowset is None or self._save is None:
            return
        try:
            if flowset.version not in self._saved:
                self._save(flowset.version, flowset.texts)
                self._saved.add(flowset.version)
            # Marked after it is saved, so the pointer never names a version Redis lacks.
            stale = time.monotonic() - self._marked_at >= REMARK_SECONDS
            if self._mark_good is not None and (self._marked != flowset.version or stale):
                self._mark_good(flowset.version)
                self._marked, self._marked_at = flowset.version, time.monotonic()
        except Exception as exc:
            log.warning("flows version %s not yet kept in Redis: %s", flowset.version, exc)


def _signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return ()
    found = []
    for entry in entries:
        if entry.name.endswith((".yaml", ".yml")) and entry.is_file():
            stat = entry.stat()
            found.append((entry.name, stat.st_mtime_ns, stat.st_size))
    return tuple(found)
