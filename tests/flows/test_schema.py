"""The JSON Schemas for flow and pool files: shipped, valid, and in step with the samples."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ivr.flows.loader import load_flow_texts
from tests.contract_examples import CONTRACT_FLOW, CONTRACT_POOLS

SAMPLES = Path(__file__).resolve().parents[2] / "call_flows"


def schema(name: str) -> dict[str, Any]:
    text = resources.files("ivr").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validator(name: str) -> jsonschema.Draft202012Validator:
    found = schema(name)
    jsonschema.Draft202012Validator.check_schema(found)
    return jsonschema.Draft202012Validator(found)


def errors(name: str, document: Any) -> list[str]:
    return [error.message for error in validator(name).iter_errors(document)]


@pytest.mark.parametrize("name", ["flow", "pools"])
def test_the_schemas_are_draft_2020_12_with_descriptions(name: str) -> None:
    found = schema(name)
    assert found["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(found)
    assert found["description"]
    assert all("description" in d for d in found["$defs"].values() if "$ref" not in d)


@pytest.mark.parametrize(
    ("file_name", "name"),
    [("support.yaml", "flow"), ("hours.yaml", "flow"), ("pools.yaml", "pools")],
)
def test_the_samples_follow_the_schemas_they_point_at(file_name: str, name: str) -> None:
    path = SAMPLES / file_name
    text = path.read_text(encoding="utf-8")
    first_line = text.splitlines()[0]
    assert first_line == f"# yaml-language-server: $schema=../ivr/schemas/{name}.schema.json"
    assert (path.parent / first_line.split("=", 1)[1]).resolve().is_file()
    assert errors(name, yaml.safe_load(text)) == []


@pytest.mark.parametrize(("text", "name"), [(CONTRACT_FLOW, "flow"), (CONTRACT_POOLS, "pools")])
def test_the_contract_examples_follow_the_schemas(text: str, name: str) -> None:
    assert errors(name, yaml.safe_load(text)) == []


def test_the_contract_flow_example_loads() -> None:
    flows, problems = load_flow_texts({"support.yaml": CONTRACT_FLOW})
    assert problems == []
    assert flows["support"].fallback == "voicemail"


def flow(**step: Any) -> dict[str, Any]:
    return {"numbers": ["+15005550006"], "steps": {"main": step, "bye": {"hangup": True}}}


@pytest.mark.parametrize(
    "document",
    [
        flow(say="Hi.", pause=1),  # two actions
        flow(sya="Hi."),  # unknown key
        flow(menu={"prompt": "Press 1.", "options": {"a": "bye"}}),  # not a key of the keypad
        flow(menu={"prompt": "Press 1.", "options": {"1": "bye"}, "attempts": 0}),
        flow(dial="+4420"),  # not E.164
        flow(play="ftp://example.com/hold.mp3"),
        flow(say={"english": "Hi."}),  # not a language code
        {"numbers": [15005550006], "steps": {"main": {"say": "Hi."}}},  # unquoted number
        {"steps": {}},
    ],
)
def test_the_flow_schema_rejects_a_bad_flow(document: dict[str, Any]) -> None:
    assert errors("flow", document)


def pools(**changes: Any) -> dict[str, Any]:
    pool = {
        "timezone": "Africa/Cairo",
        "queues": ["billing"],
        "shifts": [{"days": "sun-thu", "from": "09:00", "to": "18:00"}],
        "agents": [{"name": "Omar", "phone": "+201001234567"}],
    }
    return {"pools": {"cairo": {**pool, **changes}}}


def test_the_pools_schema_accepts_the_extra_keys() -> None:
    extra = pools(
        caller_id="+15005550006",
        holidays={
            "country": "GB",
            "subdivision": "ENG",
            "dates": ["2026-09-02"],
            "closed": [{"from": "2026-12-24 13:00", "to": "2026-12-25 00:00"}],
            "open": [{"from": "2026-12-28 09:00", "to": "2026-12-28 13:00"}],
        },
        agents=[
            {"name": "Minh", "client": "minh", "languages": ["vi-VN"], "id": "minh"},
            {"name": "Desk", "sip": "sip:desk@pbx.example.com"},
        ],
    )
    assert errors("pools", extra) == []


@pytest.mark.parametrize(
    "document",
    [
        pools(strategy="random"),
        pools(agents=[{"name": "Omar", "phone": "+201001234567", "client": "omar"}]),
        pools(agents=[{"name": "Omar"}]),
        pools(shifts=[{"days": "weekdays", "from": "09:00", "to": "18:00"}]),
        pools(shifts=[{"days": "mon", "from": "9am", "to": "18:00"}]),
        pools(holidays={"country": "Egypt"}),
        pools(queue=["billing"]),
        {"pool": {}},
    ],
)
def test_the_pools_schema_rejects_bad_pools(document: dict[str, Any]) -> None:
    assert errors("pools", document)
