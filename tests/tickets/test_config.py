"""tickets.yaml: the contract example loads, mistakes are located, secrets stay out of it."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ivr.commands.check import check_directory
from ivr.errors import ConfigError, IvrError
from ivr.settings import Settings
from ivr.tickets.config import check_tickets, load_sinks, sinks_for_worker
from ivr.tickets.sinks import EmailSink, FreshdeskSink, WebhookSink, ZendeskSink, build_sinks
from tests.conftest import SAMPLE_FLOWS

CONTRACT_TICKETS = """\
sinks:
  - {type: webhook, url: "https://helpdesk.example.com/hooks/ivr", secret: "${IVR_WEBHOOK_SECRET}"}
  - {type: email, host: smtp.example.com, port: 587, starttls: true, username: "${SMTP_USER}",
     password: "${SMTP_PASSWORD}", from: "ivr@example.com", to: ["support@example.com"]}
  - {type: zendesk, subdomain: example, email: "agent@example.com", token: "${ZENDESK_TOKEN}"}
  - {type: freshdesk, domain: example.freshdesk.com, api_key: "${FRESHDESK_KEY}"}
"""
ENV = {
    "S": "s",
    "T": "t",
    "K": "k",
    "IVR_WEBHOOK_SECRET": "s1",
    "SMTP_USER": "ivr",
    "SMTP_PASSWORD": "pw",
    "ZENDESK_TOKEN": "zt",
    "FRESHDESK_KEY": "fk",
}


def write(directory: Path, text: str) -> Path:
    path = directory / "tickets.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def schema_errors(document: Any) -> list[str]:
    text = resources.files("ivr").joinpath("schemas", "tickets.schema.json").read_text("utf-8")
    found = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(found)
    return [e.message for e in jsonschema.Draft202012Validator(found).iter_errors(document)]


def test_the_contract_example_loads_and_builds(tmp_path: Path) -> None:
    write(tmp_path, CONTRACT_TICKETS)
    assert check_tickets(tmp_path, ENV) == []
    specs = sinks_for_worker(tmp_path, ENV)
    assert [s.name for s in specs] == ["webhook", "email", "zendesk", "freshdesk"]
    sinks = build_sinks(specs, Settings(), ENV)
    assert [type(s) for s in sinks] == [WebhookSink, EmailSink, ZendeskSink, FreshdeskSink]
    webhook, email, zendesk, freshdesk = sinks
    assert isinstance(webhook, WebhookSink) and webhook.secret == "s1"
    assert isinstance(email, EmailSink) and (email.port, email.password) == (587, "pw")
    assert isinstance(zendesk, ZendeskSink) and zendesk.base == "https://example.zendesk.com"
    assert zendesk.auth == ("agent@example.com/token", "zt")
    assert isinstance(freshdesk, FreshdeskSink) and freshdesk.auth == ("fk", "X")
    assert schema_errors(yaml.safe_load(CONTRACT_TICKETS)) == []


def test_no_file_no_sinks(tmp_path: Path) -> None:
    assert check_tickets(tmp_path) == []
    assert sinks_for_worker(tmp_path) == []


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        (
            'sinks:\n  - {type: webhook, url: "https://h.example.com", secret: "hunter2"}\n',
            2,
            51,
            "`secret` must be given as ${ENV_VAR}",
        ),
        ("sinks:\n  - type: webhook\n    url: https://h.example.com\n", 2, 5, "needs `secret`"),
        ("sinks:\n  - {type: fax}\n", 2, 6, "sink type must be one of"),
        (
            'sinks:\n  - {type: webhook, url: "https://h", secret: "${S}", retries: 3}\n',
            2,
            55,
            "unknown key 'retries'",
        ),
        (
            'sinks:\n  - {type: email, host: h, from: "a@b.example", to: [nobody]}\n',
            2,
            49,
            "`to` is a list of e-mail addresses",
        ),
        ('sinks:\n  - {type: zendesk, email: "a@b.example", token: "${T}"}\n', 2, 5, "either"),
        ("sinks: {}\n", 1, 1, "`sinks` must be a list"),
        (
            'sinks:\n  - {type: webhook, url: "https://a", secret: "${S}"}\n'
            '  - {type: webhook, url: "https://b", secret: "${S}"}\n',
            3,
            5,
            "two sinks are named 'webhook'",
        ),
    ],
)
def test_mistakes_are_located(tmp_path: Path, text: str, line: int, col: int, message: str) -> None:
    path = write(tmp_path, text)
    problems = check_tickets(tmp_path, ENV)
    assert problems, text
    first = problems[0]
    assert (first.path, first.line, first.col) == (str(path), line, col), str(first)
    assert message in first.message
    with pytest.raises(ConfigError):
        sinks_for_worker(tmp_path, ENV)


def test_urls_and_hosts_may_come_from_the_environment(tmp_path: Path) -> None:
    write(tmp_path, 'sinks:\n  - {type: webhook, url: "${HOOK_URL}", secret: "${S}"}\n')
    problems = check_tickets(tmp_path, {})
    assert [p.severity for p in problems] == ["warning", "warning"]
    assert "${HOOK_URL} is not set" in problems[0].message
    env = {"HOOK_URL": "https://hooks.example.com/x", "S": "k"}
    (sink,) = build_sinks(sinks_for_worker(tmp_path, env), Settings(), env)
    assert isinstance(sink, WebhookSink) and sink.url == "https://hooks.example.com/x"
    with pytest.raises(ConfigError, match="\\$\\{S\\} is not set"):
        sinks_for_worker(tmp_path, {"HOOK_URL": "https://x.example.com"})


def test_ivr_check_does_not_read_tickets_yaml_as_a_flow(flows_dir: Path) -> None:
    write(flows_dir, CONTRACT_TICKETS)
    flows, problems = check_directory(flows_dir)
    assert "tickets" not in flows
    assert [p for p in problems if p.severity == "error"] == []
    assert sorted(flows) == sorted(check_directory(SAMPLE_FLOWS)[0])


def test_the_schema_refuses_a_literal_secret() -> None:
    document = {"sinks": [{"type": "webhook", "url": "https://h.example.com", "secret": "x"}]}
    assert schema_errors(document)


def test_load_sinks_reports_yaml_syntax(tmp_path: Path) -> None:
    write(tmp_path, "sinks: [\n")
    sinks, problems = load_sinks(tmp_path)
    assert sinks == [] and "YAML syntax" in problems[0].message


def test_an_undecodable_file_is_reported_at_its_first_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "tickets.yaml"
    path.write_bytes(b'sinks:\n  - {type: webhook, url: "https://h\xe9.example.com"}\n')
    problems = check_tickets(tmp_path, ENV)
    assert [str(p) for p in problems] == [f"{path}:2:36: not UTF-8 text (byte 0xe9 at offset 42)"]
    with pytest.raises(ConfigError):
        sinks_for_worker(tmp_path, ENV)


def test_a_worker_names_every_unset_variable_where_it_is_written(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sinks:\n"
        '  - {type: webhook, url: "${HOOK_URL}", secret: "${IVR_WEBHOOK_SECRET}"}\n'
        '  - {type: email, host: "${SMTP_HOST}", from: "ivr@example.com", to: [a@b.example]}\n',
    )
    with pytest.raises(ConfigError) as caught:
        sinks_for_worker(tmp_path, {"IVR_WEBHOOK_SECRET": "s", "SMTP_HOST": ""})
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:2:21: sink 'webhook': ${{HOOK_URL}} is not set in this environment"
        " (`url` needs it)",
        f"{path}:3:19: sink 'email': ${{SMTP_HOST}} is not set in this environment"
        " (`host` needs it)",
    ]


def test_a_variable_is_checked_as_the_value_it_stands_for(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sinks:\n"
        '  - {type: webhook, url: "${HOOK_URL}", secret: "${S}"}\n'
        '  - {type: email, host: h, from: "${FROM}", to: ["${TO}"]}\n',
    )
    env = {"HOOK_URL": "helpdesk.example.com/hooks/ivr", "S": "k", "FROM": "ivr", "TO": "x@y.z"}
    expected = [
        f"{path}:2:21: sink 'webhook': ${{HOOK_URL}} ('helpdesk.example.com/hooks/ivr'):"
        " `url` must be an http(s) URL",
        f"{path}:3:28: sink 'email': ${{FROM}} ('ivr'): `from` must be an e-mail address",
    ]
    assert [str(p) for p in check_tickets(tmp_path, env)] == expected
    several = {**env, "HOOK_URL": "https://h.example.com", "FROM": "i@x.example"}
    assert check_tickets(tmp_path, several | {"TO": "a@x.example, b@y.example"}) == []
    with pytest.raises(ConfigError) as caught:
        sinks_for_worker(tmp_path, env)
    assert [str(p) for p in caught.value.problems] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'sinks:\n  - {type: webhook, url: "https://h", secret: "${S}", retries: 3}\n',
            ["2:55: unknown key 'retries' for a webhook sink (known: type, name, url, secret,"
             " timeout)"],
        ),
        (
            "sinks:\n  - {type: webhok, url: x}\n",
            ["2:6: sink type must be one of webhook, email, zendesk, freshdesk, sms;"
             " did you mean 'webhook'?"],
        ),
        (
            'sinks:\n  - {type: email, host: h, port: 465, tls: true, starttls: true,'
            ' from: "a@b.example", to: [c@d.example]}\n',
            ["2:5: an email sink takes `tls` (port 465) or `starttls` (port 587), not both"],
        ),
        (
            'sinks:\n  - {type: email, host: h, username: "${U}", from: "a@b.example",'
            ' to: [c@d.example]}\n',
            ["2:5: an email sink's `username` needs a `password` (and the other way round)"],
        ),
        (
            'sinks:\n  - {type: email, host: h, port: 587.5, from: "a@b.example",'
            ' to: [c@d.example]}\n',
            ["2:28: `port` must be a whole number from 1 to 65535"],
        ),
        (
            'sinks:\n  - {type: email, host: "smtp://h.example", from: "a@b.example",'
            ' to: [c@d.example]}\n',
            ["2:19: `host` must be a host name or address, like smtp.example.com"],
        ),
        (
            'sinks:\n  - {type: webhook, url: "https://", secret: "${S}"}\n',
            ["2:21: `url` must be an http(s) URL with a host"],
        ),
        (
            'sinks:\n  - {type: zendesk, subdomain: example.zendesk.com, email: a@b.example,'
            ' token: "${T}"}\n',
            ["2:21: `subdomain` is the name before .zendesk.com, like example (or give `url`)"],
        ),
        (
            'sinks:\n  - {type: freshdesk, domain: "https://x.freshdesk.com", api_key: "${K}"}\n',
            ["2:23: `domain` must be a host name, like example.freshdesk.com (or give `url`)"],
        ),
    ],
)  # fmt: skip
def test_each_mistake_is_said_once_and_plainly(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = write(tmp_path, text)
    assert [str(p) for p in check_tickets(tmp_path, ENV)] == [f"{path}:{e}" for e in expected]


def test_a_variable_may_be_part_of_a_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'sinks:\n  - {type: webhook, url: "https://${HOOK_HOST}/hooks/ivr", secret: "${S}"}\n',
    )
    env = {"HOOK_HOST": "helpdesk.example.com", "S": "k"}
    assert check_tickets(tmp_path, env) == []
    (sink,) = build_sinks(sinks_for_worker(tmp_path, env), Settings(), env)
    assert isinstance(sink, WebhookSink) and sink.url == "https://helpdesk.example.com/hooks/ivr"
    unset = check_tickets(tmp_path, {"S": "k"})
    assert [str(p) for p in unset] == [
        f"{path}:2:21: warning: sink 'webhook': ${{HOOK_HOST}} is not set in this environment"
        " (`url` needs it)"
    ]
    bad = check_tickets(tmp_path, {"S": "k", "HOOK_HOST": "a b"})
    assert [p.message for p in bad] == [
        "sink 'webhook': https://${HOOK_HOST}/hooks/ivr ('https://a b/hooks/ivr'):"
        " `url` must be an http(s) URL with a host"
    ]


def test_an_sms_sink_without_a_twilio_account_is_named_by_check(tmp_path: Path) -> None:
    path = write(tmp_path, 'sinks:\n  - {type: sms, from: "+15005550006"}\n')
    assert [str(p) for p in check_tickets(tmp_path, {"TWILIO_AUTH_TOKEN": "t"})] == [
        f"{path}:2:6: warning: sink 'sms': TWILIO_ACCOUNT_SID is not set in this environment"
        " (texts are sent through the Twilio account)"
    ]
    assert [str(p) for p in check_tickets(tmp_path, {})] == [
        f"{path}:2:6: warning: sink 'sms': TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set"
        " in this environment (texts are sent through the Twilio account)"
    ]
    account = {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}
    assert check_tickets(tmp_path, account) == []
    with pytest.raises(IvrError, match="an sms sink needs TWILIO_ACCOUNT_SID"):
        build_sinks(sinks_for_worker(tmp_path, {}), Settings(), {})
