"""The README's configuration table names every variable the settings read, and no other."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_configuration_table_lists_exactly_the_variables_read() -> None:
    code = (ROOT / "ivr" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r"""env(?:\.get\(|, )"([A-Z][A-Z0-9_]+)\"""", code))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, re.M))
    assert "IVR_DATA_DIR" in read and "IVR_RELOAD_INTERVAL" in read
    assert listed == read
