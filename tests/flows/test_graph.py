"""`ivr graph FLOW`: a Mermaid flowchart of a flow, with its choices on the edges."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from ivr.commands.graph import graph, mermaid
from ivr.flows.loader import load_flow_dir, load_flow_texts

SAMPLES = Path(__file__).resolve().parents[2] / "call_flows"

BRANCHING = """\
flow: branching
numbers: ["+15005550006"]
languages: [en-US, vi-VN]
steps:
  split:
    branch:
      cases:
        - {caller_prefix: "+84", next: vietnamese}
        - {vars: {tier: [gold, silver]}, next: desk}
      default: ask
  vietnamese: {language: vi-VN, next: ask}
  ask:
    menu:
      prompt: 'Say "yes" or press #1 <now>.'
      options: {"1": desk}
      otherwise: mailbox
  desk: {dial: {number: "+442079460000", otherwise: mailbox}}
  mailbox: {voicemail: {}}
"""


def node_labels(chart: str) -> dict[str, str]:
    """Node id -> label, for every node defined in the chart."""
    found = re.findall(r'^\s*(\w+)[\[\(\{]+"(.*?)"[\]\)\}]+$', chart, re.MULTILINE)
    return dict(found)


def edges(chart: str) -> set[tuple[str, str, str]]:
    """(from, label, to) for every edge of the chart; label "" when there is none."""
    found = re.findall(r'^\s*(\w+) -\.?->(?:\|"(.*?)"\|)? (\w+)$', chart, re.MULTILINE)
    return set(found)


def test_the_sample_flow_as_mermaid() -> None:
    result = CliRunner().invoke(graph, ["support", "--flows", str(SAMPLES)])
    assert result.exit_code == 0, result.output
    chart = result.stdout
    assert chart.startswith("flowchart TD\n")
    labels = node_labels(chart)
    flows, _ = load_flow_dir(SAMPLES)
    by_name = {step: f"s{i}" for i, step in enumerate(flows["support"].steps)}
    assert labels[by_name["welcome"]] == (
        "<b>welcome</b><br/>say: Thank you for calling customer support."
    )
    assert labels[by_name["billing_queue"]] == "<b>billing_queue</b><br/>route: queue billing, hold"
    assert labels[by_name["hours"]] == "<b>hours</b><br/>include: hours"
    main, bye = by_name["main"], by_name["bye"]
    assert (main, "1", by_name["billing"]) in edges(chart)
    assert (main, "otherwise, after 3 tries", bye) in edges(chart)
    assert (by_name["choose_language"], "2 · vi-VN", main) in edges(chart)
    assert (by_name["billing_queue"], "no answer", by_name["voicemail"]) in edges(chart)
    assert (bye, "", "call_end") in edges(chart)
    assert ("call_start", "", by_name["welcome"]) in edges(chart)
    # The steps of hours.yaml are grouped under the step that includes them.
    opening = f'subgraph {by_name["hours"]}_inc ["included at hours"]\n'
    group = chart.split(opening, 1)[1].split("    end\n", 1)[0]
    assert group.count("<b>") == 3 and "<b>more</b>" in group
    assert f"{by_name['hours/more']}{{{{" in group


def test_branches_dials_and_escaping() -> None:
    flows, problems = load_flow_texts({"branching.yaml": BRANCHING})
    assert problems == []
    chart = mermaid(flows["branching"])
    ids = {step: f"s{i}" for i, step in enumerate(flows["branching"].steps)}
    assert (ids["split"], "caller +84", ids["vietnamese"]) in edges(chart)
    assert (ids["split"], "tier = gold or silver", ids["desk"]) in edges(chart)
    assert (ids["split"], "default", ids["ask"]) in edges(chart)
    assert (ids["desk"], "no answer", ids["mailbox"]) in edges(chart)
    ask = node_labels(chart)[ids["ask"]]
    assert ask == "<b>ask</b><br/>menu: Say #quot;yes#quot; or press #35;1 #lt;now#gt;."
    assert node_labels(chart)[ids["desk"]] == "<b>desk</b><br/>dial: +442079460000"


def test_every_line_of_the_sample_chart_is_understood() -> None:
    chart = CliRunner().invoke(graph, ["support", "--flows", str(SAMPLES)]).stdout
    for line in chart.splitlines()[1:]:
        known = (
            line.strip().startswith(("%%", "subgraph ", "end"))
            or node_labels(line + "\n")
            or edges(line + "\n")
            or line.strip() in ('call_start(("call to +15005550006"))', "call_end((end))")
        )
        assert known, line


def test_an_unknown_flow_is_a_clear_error() -> None:
    result = CliRunner().invoke(graph, ["sales", "--flows", str(SAMPLES)])
    assert result.exit_code == 1
    assert "no flow 'sales' in" in result.output
    assert "(flows: agents, hours, support)" in result.output


def test_a_flow_whose_file_does_not_parse_is_not_just_missing(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(BRANCHING + "  broken: {say: [Hi.}\n", encoding="utf-8")
    result = CliRunner().invoke(graph, ["mine", "--flows", str(tmp_path)])
    assert result.exit_code == 1
    assert "no flow 'mine' in" in result.output and "it may be in a file with errors:" in (
        result.output
    )
    assert f"{tmp_path}/mine.yaml:" in result.output and "YAML syntax" in result.output


def test_a_flow_can_be_named_by_its_file(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(BRANCHING, encoding="utf-8")
    result = CliRunner().invoke(graph, ["mine.yaml", "--flows", str(tmp_path)])
    assert result.exit_code == 0
    assert result.stdout.startswith("flowchart TD\n")
