"""The flow registry over a real Redis: good versions marked, and served when the files break."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from ivr.flows.registry import FlowRegistry
from ivr.store import Store


def _registry(flows: Path, store: Store) -> FlowRegistry:
    registry = FlowRegistry(flows, interval=0, save=store.save_flowset, fetch=store.load_flowset)
    registry.refresh()
    registry.keep_good_versions(store.mark_good_flowset)
    return registry


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_good_versions_are_marked_and_broken_edits_are_not(
    flows_dir: Path, connection: redis.Redis
) -> None:
    store = Store(connection)
    registry = _registry(flows_dir, store)
    first = registry.current()
    assert first is not None and store.good_flowset_version() == first.version
    assert store.load_flowset(first.version) == dict(first.texts)

    support = flows_dir / "support.yaml"
    original = support.read_text()
    _edit(support, "Thank you for calling", "Thanks for calling")
    second = registry.current()
    assert second is not None and second.version != first.version
    assert store.good_flowset_version() == second.version

    _edit(support, "next: choose_language", "next: nowhere")
    assert registry.current() is second and registry.errors
    assert store.good_flowset_version() == second.version

    support.write_text(original)  # back to a version this worker already kept
    assert registry.current() is not None and store.good_flowset_version() == first.version


def test_broken_files_fall_back_to_a_kept_version_until_fixed(
    flows_dir: Path, connection: redis.Redis, tmp_path: Path
) -> None:
    store = Store(connection)
    good = _registry(flows_dir, store).current()
    assert good is not None
    broken_dir = tmp_path / "broken"
    shutil.copytree(flows_dir, broken_dir)
    support = broken_dir / "support.yaml"
    _edit(support, "next: choose_language", "next: nowhere")

    registry = _registry(broken_dir, store)
    assert registry.current() is None and registry.errors
    assert registry.fall_back_to("0" * 16) is None  # a version Redis does not keep
    served = registry.fall_back_to(good.version)
    assert served is not None and served.version == good.version
    assert registry.current() is served
    assert store.good_flowset_version() == good.version

    _edit(support, "next: nowhere", "next: choose_language")
    fixed = registry.current()
    assert fixed is not None and fixed.version == good.version and not registry.errors


def test_an_undecodable_file_keeps_the_version_served_and_says_where(
    flows_dir: Path, connection: redis.Redis
) -> None:
    registry = _registry(flows_dir, Store(connection))
    served = registry.current()
    assert served is not None
    pools = flows_dir / "pools.yaml"
    lines = pools.read_bytes().splitlines(keepends=True)
    lines.insert(1, b"  \xff\n")
    pools.write_bytes(b"".join(lines))
    assert registry.current() is served
    offset = len(lines[0]) + 2
    assert [str(p) for p in registry.errors] == [
        f"{pools}:2:3: not UTF-8 text (byte 0xff at offset {offset})"
    ]
