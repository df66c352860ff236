"""Loading and validating call flow YAML: each problem at its line and column, naming the step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.errors import Problem
from ivr.flows.loader import load_flow_dir, load_flow_texts, read_flow_files
from ivr.flows.model import (
    ANY_LANGUAGE,
    Branch,
    Dial,
    Menu,
    Play,
    Route,
    Say,
    SetVars,
    SwitchLanguage,
    Voicemail,
)

SAMPLES = Path(__file__).resolve().parents[2] / "call_flows"
BASE = Path("call_flows")

SUPPORT = """\
flow: support
numbers: ["+15005550006"]
languages: [en-US, vi-VN]
start: welcome
steps:
  welcome:
    say: {en-US: "Hello.", vi-VN: "Xin chào."}
    next: main
  main:
    menu:
      prompt: {en-US: "Billing, press 1.", vi-VN: "Thanh toán, nhấn 1."}
      options:
        "1": billing
        "2": {language: vi-VN, next: main}
      attempts: 3
      otherwise: bye
  billing:
    route: {queue: billing, otherwise: voicemail}
  voicemail:
    voicemail: {prompt: "Leave a message."}
  bye: {say: "Goodbye.", hangup: true}
"""


def position(text: str, needle: str) -> tuple[int, int]:
    """The (line, col) where `needle` first appears in `text`, both from 1.

    "before|needle" finds the first `needle` after the first `before`.
    """
    before, _, needle = needle.rpartition("|")
    index = text.index(needle, text.index(before) if before else 0)
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


def load(files: dict[str, str]) -> tuple[dict[str, object], list[Problem]]:
    flows, problems = load_flow_texts(files, base=BASE)
    return dict(flows), problems


def shown(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


def test_a_good_flow_loads_without_problems() -> None:
    flows, problems = load({"support.yaml": SUPPORT})
    assert problems == []
    flow = flows["support"]
    assert flow.languages == ("en-US", "vi-VN")  # type: ignore[attr-defined]
    assert flow.fallback == "voicemail"  # type: ignore[attr-defined]
    assert flow.path == "call_flows/support.yaml"  # type: ignore[attr-defined]


def test_steps_are_built_into_the_model() -> None:
    flows, _ = load_flow_texts({"support.yaml": SUPPORT})
    flow = flows["support"]
    main = flow.steps["main"]
    assert isinstance(main.action, Menu)
    assert [(o.key, o.next, o.language) for o in main.action.options] == [
        ("1", "billing", None),
        ("2", "main", "vi-VN"),
    ]
    assert main.action.otherwise == "bye"
    assert main.at is not None and (main.at.line, main.at.col) == position(SUPPORT, "main:")
    welcome = flow.steps["welcome"].action
    assert isinstance(welcome, Say) and welcome.prompt.text("vi-VN") == "Xin chào."
    assert flow.steps["billing"].action == Route("billing", otherwise="voicemail")
    assert flow.steps["bye"].hangup
    assert isinstance(flow.steps["voicemail"].action, Voicemail)
    assert flow.voices == {"en-US": "Google.en-US-Standard-C", "vi-VN": "Google.vi-VN-Standard-A"}


# (text replaced, replacement, where the problem points, message)
BROKEN = [
    ("start: welcome", "start: welcome\nflwo: x", "flwo",
     "unknown key 'flwo' in a call flow file (did you mean 'flow'?)"),
    ("    next: main\n  main:", "    nxt: main\n  main:", "nxt",
     "step 'welcome': unknown key 'nxt' in a step (did you mean 'next'?)"),
    ("      attempts: 3", "      attempt: 3", "attempt",
     "step 'main': unknown key 'attempt' in menu (did you mean 'attempts'?)"),
    ('"1": billing', '"1": sales', '"1"', "step 'main': option '1' leads to unknown step 'sales'"),
    ("start: welcome", "start: welcom", "start",
     "start step 'welcom' is not one of the steps (did you mean 'welcome'?)"),
    ("otherwise: bye", "otherwise: byebye", "otherwise: byebye",
     "step 'main': otherwise leads to unknown step 'byebye' (did you mean 'bye'?)"),
    ("otherwise: voicemail", "otherwise: mailbox", "otherwise: mailbox",
     "step 'billing': otherwise leads to unknown step 'mailbox'"),
    ("    next: main\n", "    next: mian\n", "next: mian",
     "step 'welcome': next leads to unknown step 'mian' (did you mean 'main'?)"),
    ("start: welcome", "start: welcome\nfallback: nowhere", "fallback",
     "fallback step 'nowhere' is not one of the steps"),
    ("start: welcome", "start: welcome\nfallback: bye", "fallback",
     "fallback step 'bye' must be a voicemail or dial step"),
    ('say: {en-US: "Hello.", vi-VN: "Xin chào."}', 'say: {en-US: "Hello."}', "say:",
     "step 'welcome': say has no text for vi-VN"),
    ('prompt: {en-US: "Billing, press 1.", vi-VN: "Thanh toán, nhấn 1."}',
     'prompt: {vi-VN: "Thanh toán, nhấn 1."}', "prompt",
     "step 'main': menu prompt has no text for en-US"),
    ("languages: [en-US, vi-VN]", "languages: [en-US, vi-VN, english]", "english",
     "'english' is not a language code such as en-US, vi-VN or ar-XA"),
    ("languages: [en-US, vi-VN]", "languages: [en_US, vi-VN]", "en_US",
     "'en_US' is not a language code such as en-US, vi-VN or ar-XA"),
    ('numbers: ["+15005550006"]', 'numbers: ["15005550006"]', '"15005550006"',
     "number '15005550006' is not an E.164 number such as \"+15005550006\""),
    ('numbers: ["+15005550006"]', "numbers: [+15005550006]", "+1500",
     'number must be quoted, like "+15005550006": unquoted it is read as an integer'),
    ("    next: main\n  main:", "    pause: 1\n    next: main\n  main:", "pause",
     "step 'welcome': a step has one action, this one has say and pause: "
     "split it into steps joined by next"),
    ("attempts: 3", "attempts: 0", "attempts",
     "step 'main': attempts must be a whole number from 1 to 10"),
    ("attempts: 3", "attempts: 3\n      timeout: 0", "timeout",
     "step 'main': timeout must be a whole number from 1 to 60"),
    ("attempts: 3", "attempts: 3\n      num_digits: 33", "num_digits",
     "step 'main': num_digits must be a whole number from 1 to 32"),
    ("attempts: 3", 'attempts: 3\n      finish_on_key: "x"', "finish_on_key",
     "step 'main': finish_on_key must be one of 0-9, * or #, or \"\" for none, not 'x'"),
    ("attempts: 3", "attempts: 3\n      min_confidence: 1.5", "min_confidence",
     "step 'main': min_confidence must be a number from 0 to 1"),
    ('{prompt: "Leave a message."}', '{prompt: "Leave a message.", max_seconds: 4000}',
     "max_seconds", "step 'voicemail': max_seconds must be a whole number from 1 to 3600"),
    ('"1": billing', '"a": billing', '"a"',
     "step 'main': option key 'a' must be digits, '*' or '#' (quote '*' and '#')"),
    ("{language: vi-VN, next: main}", "{language: fr-FR, next: main}", "language: fr-FR",
     "step 'main': option '2' switches to fr-FR, which is not in the flow's languages "
     "(en-US, vi-VN)"),
    ('  bye: {say: "Goodbye.", hangup: true}',
     '  bye: {say: "Goodbye.", next: desk}\n  desk: {dial: "12345"}', 'dial: "12345"',
     "step 'desk': dial '12345' is not an E.164 number such as \"+15005550006\""),
    ('  bye: {say: "Goodbye.", hangup: true}',
     '  bye: {say: "Goodbye.", next: desk}\n  desk: {dial: {number: "+4420", timeout: 0}}',
     'number: "+4420"',
     "step 'desk': dial number '+4420' is not an E.164 number such as \"+15005550006\""),
    ('bye: {say: "Goodbye.", hangup: true}', 'bye: {play: "ftp://example.com/a.mp3", hangup: true}',
     "play", "step 'bye': play needs an http(s) URL of the audio, not 'ftp://example.com/a.mp3'"),
    ("      otherwise: bye\n", "      otherwise: bye\n    hangup: true\n", "hangup",
     "step 'main': hangup: true can follow say, play or pause, not menu"),
    ('bye: {say: "Goodbye.", hangup: true}', 'bye: {say: "Goodbye.", hangup: true, next: main}',
     "bye: {|next: main}", "step 'bye': hangup: true ends the call, so next would never be used"),
    ("    next: main\n  main:", "    next: again\n  again: {pause: 1, next: welcome}\n  main:",
     "welcome:", "step 'welcome': loop 'welcome' -> 'again' -> 'welcome' never waits for the "
     "caller (no menu, dial, route or voicemail in it), so the call would go round it forever"),
    ('bye: {say: "Goodbye.", hangup: true}', 'bye: {say: "Goodbye.", next: bye}', "bye: {",
     "step 'bye': loop 'bye' -> 'bye' never waits for the caller (no menu, dial, route or "
     "voicemail in it), so the call would go round it forever"),
    ("    next: main\n  main:", "    next: main\n    next: bye\n  main:", "next: bye",
     "key 'next' given twice"),
    ("  billing:", "  sales/team: {say: x}\n  billing:", "sales/team",
     "step 'sales/team': a step name is made of letters, digits, '_', '-' and '.'"),
    ('"1": billing', '"1": {language: vi-VN}', '"1"',
     "step 'main': option '1' leads nowhere: give it next, or give the step next"),
    ("attempts: 3", "attempts: 3\n      num_digits: 2", '"1"',
     "step 'main': option '1' can never be pressed: the menu takes exactly 2 key(s) (num_digits)"),
    ("start: welcome", "start: welcome\nvoices: {fr-FR: Polly.Celine}", "fr-FR",
     "voice for fr-FR, which is not in languages"),
    ('  bye: {say: "Goodbye.", hangup: true}',
     '  bye: {say: "Goodbye.", next: who}\n  who: {set: {vip: true}, next: main}', "vip",
     "step 'who': variable 'vip' must be text or a number (quote true, false and empty values)"),
    ('  bye: {say: "Goodbye.", hangup: true}',
     '  bye: {say: "Goodbye.", next: split}\n'
     '  split:\n    branch:\n      cases: [{next: main}]\n      default: mian\n',
     "{next: main}", "step 'split': a case needs a condition: caller_prefix, from_country, "
     "language or vars"),
    ('  bye: {say: "Goodbye.", hangup: true}',
     '  bye: {say: "Goodbye.", next: split}\n'
     '  split:\n    branch:\n      cases: [{from_country: VN, next: mian}]\n      default: main\n',
     "next: mian", "step 'split': case 1 leads to unknown step 'mian' (did you mean 'main'?)"),
    ('  bye: {say: "Goodbye.", hangup: true}',
     '  bye: {say: "Goodbye.", next: split}\n'
     '  split:\n    branch:\n      cases: [{caller_prefix: 84, next: main}]\n      default: main\n',
     "caller_prefix: 84",
     "step 'split': caller_prefix 84 must be a caller prefix such as \"+84\" (quoted)"),
    ("    next: main\n  main:", "    next: main\n  main:\n    language: ar-XA\n    next: menu\n"
     "  menu:", "language: ar-XA",
     "step 'main': switches to ar-XA, which is not in the flow's languages (en-US, vi-VN)"),
    ("  main:\n    menu:", "  main:\n    next: bye\n    branch: {default: bye}\n    menu:",
     "branch", "step 'main': a step has one action, this one has menu and branch: "
     "split it into steps joined by next"),
    ('"1": billing', '"1": billing\n        "#": bye', '"#"',
     "step 'main': option '#' can never be pressed: # ends the input (finish_on_key)"),
    ('  bye: {say: "Goodbye.", hangup: true}',
     '  bye: {say: "Goodbye.", next: split}\n'
     '  split:\n    branch:\n      cases: [{vars: {vip-level: 1}, next: main}]\n'
     '      default: main\n',
     "vip-level", "step 'split': variable name 'vip-level' must be letters, digits and '_'"),
    ("  main:\n", "  main:\n    sya: hi\n", "sya",
     "step 'main': unknown key 'sya' in a step (did you mean 'say'?)"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "needle", "message"), BROKEN)
def test_each_problem_is_located_and_names_the_step(
    old: str, new: str, needle: str, message: str
) -> None:
    assert old in SUPPORT
    text = SUPPORT.replace(old, new, 1)
    _, problems = load({"support.yaml": text})
    line, col = position(text, needle)
    assert f"call_flows/support.yaml:{line}:{col}: {message}" in shown(problems)


def test_warnings_are_marked_and_named() -> None:
    text = SUPPORT + "  lost: {say: Nobody hears this., hangup: true}\n"
    _, problems = load({"support.yaml": text})
    line, col = position(text, "lost")
    assert shown(problems) == [
        f"call_flows/support.yaml:{line}:{col}: warning: "
        "step 'lost': never reached from start step 'welcome'"
    ]
    assert problems[0].severity == "warning"


def test_more_warnings() -> None:
    text = SUPPORT.replace('"1": billing', '"1": {next: billing, keywords: [billing]}')
    text = text.replace(
        'say: "Goodbye."', "say: {en-US: Goodbye., vi-VN: Tạm biệt., fr-FR: Au revoir.}"
    )
    _, problems = load({"support.yaml": text})
    assert [(p.severity, p.message) for p in problems] == [
        ("warning", "step 'main': keywords are only heard with speech: true"),
        ("warning", "step 'bye': say has text for fr-FR, which is not in the flow's languages"),
    ]


def test_a_google_voice_of_another_language_is_a_warning() -> None:
    voices = (
        "voices:\n  vi-VN: Google.en-US-Standard-C\n"
        "  en-US: Polly.Joanna\n"  # Polly's names do not say their language
    )
    text = SUPPORT.replace("start: welcome\n", "start: welcome\n" + voices)
    flows, problems = load({"support.yaml": text})
    line, col = position(text, "voices|vi-VN")
    assert shown(problems) == [
        f"call_flows/support.yaml:{line}:{col}: warning: voice Google.en-US-Standard-C speaks "
        "en-US, not vi-VN: Twilio may refuse to say its prompts"
    ]
    assert "support" in flows


def test_a_loop_through_a_menu_is_fine() -> None:
    text = SUPPORT.replace('"1": billing', '"1": billing\n        "9": welcome')
    assert load({"support.yaml": text})[1] == []


def test_yaml_syntax_errors_are_located() -> None:
    text = SUPPORT.replace("options:\n", "options: [\n")
    flows, problems = load({"support.yaml": text})
    assert flows == {}
    assert len(problems) == 1 and problems[0].message.startswith("YAML syntax: ")
    assert problems[0].path == "call_flows/support.yaml"


def test_values_of_every_action() -> None:
    text = SUPPORT.replace(
        '  bye: {say: "Goodbye.", hangup: true}',
        """\
  bye: {say: "Goodbye.", next: tune}
  tune: {play: {url: "https://example.com/hold.mp3", loop: 2}, next: wait}
  wait: {pause: 2, next: mark}
  mark: {set: {tier: gold, score: 5}, next: speak}
  speak: {language: vi-VN, next: split}
  split:
    branch:
      cases:
        - {caller_prefix: ["+84", "+1"], vars: {tier: [gold, silver]}, next: desk}
        - {from_country: VN, language: vi-VN, next: main}
      default: desk
  desk: {dial: {number: "+442079460000", timeout: 20, caller_id: "+15005550006"}}
""",
    )
    text = text.replace(
        '"1": billing', '"1": {next: billing, keywords: {vi-VN: [thanh toán], en-US: [billing]}}'
    )
    text = text.replace("      attempts: 3", "      attempts: 3\n      speech: true")
    flows, problems = load_flow_texts({"support.yaml": text})
    assert problems == []
    steps = flows["support"].steps
    assert steps["tune"].action == Play("https://example.com/hold.mp3", 2)
    assert steps["mark"].action == SetVars({"tier": "gold", "score": "5"})
    assert steps["speak"].action == SwitchLanguage("vi-VN")
    branch = steps["split"].action
    assert isinstance(branch, Branch) and branch.default == "desk"
    assert branch.cases[0].when.caller_prefix == ("+84", "+1")
    assert branch.cases[0].when.variables == {"tier": ("gold", "silver")}
    assert branch.cases[1].when.from_country == ("VN",)
    assert steps["desk"].action == Dial("+442079460000", 20, "+15005550006")
    menu = steps["main"].action
    assert isinstance(menu, Menu) and menu.speech
    assert menu.options[0].keywords == {"vi-VN": ("thanh toán",), "en-US": ("billing",)}


def test_keywords_in_some_languages_only_are_a_warning() -> None:
    text = SUPPORT.replace('"1": billing', '"1": {next: billing, keywords: {vi-VN: [thanh toán]}}')
    text = text.replace("      attempts: 3", "      attempts: 3\n      speech: true")
    _, problems = load({"support.yaml": text})
    line, col = position(text, "keywords")
    assert shown(problems) == [
        f"call_flows/support.yaml:{line}:{col}: warning: step 'main': option '1' has keywords "
        "for vi-VN but not for en-US: those callers can only press 1"
    ]


def test_keywords_as_a_list_serve_every_language() -> None:
    text = SUPPORT.replace('"1": billing', '"1": {next: billing, keywords: [billing, bill]}')
    text = text.replace("      attempts: 3", "      attempts: 3\n      speech: true")
    flows, _ = load_flow_texts({"support.yaml": text})
    menu = flows["support"].steps["main"].action
    assert isinstance(menu, Menu)
    assert menu.options[0].keywords == {ANY_LANGUAGE: ("billing", "bill")}


def test_defaults_name_start_languages_and_voices() -> None:
    text = "numbers: ['+15005550006']\nvoices: {en-US: Polly.Joanna}\nsteps:\n  hi: {say: Hi.}\n"
    flows, problems = load_flow_texts({"tiny.yml": text})
    flow = flows["tiny"]
    assert (flow.name, flow.start, flow.languages) == ("tiny", "hi", ("en-US",))
    assert flow.voices == {"en-US": "Polly.Joanna"}
    assert flow.fallback is None
    assert [p.message for p in problems] == [
        "flow 'tiny' has no voicemail step to fall back on when something fails, so callers "
        "would only hear an apology (add a voicemail step or set fallback)"
    ]


OTHER = """\
flow: other
numbers: ["+15005550006", "+15005550007"]
default: true
steps:
  hi: {say: Hi., hangup: true}
"""


def test_numbers_claimed_twice_and_two_default_flows() -> None:
    default_support = SUPPORT.replace("start: welcome", "start: welcome\ndefault: true")
    _, problems = load({"support.yaml": default_support, "zz_other.yaml": OTHER})
    number_at = position(OTHER, '"+15005550006"')
    default_at = position(OTHER, "default")
    assert shown([p for p in problems if p.severity == "error"]) == [
        f"call_flows/zz_other.yaml:{number_at[0]}:{number_at[1]}: number +15005550006 is "
        "already answered by flow 'support' (call_flows/support.yaml)",
        f"call_flows/zz_other.yaml:{default_at[0]}:{default_at[1]}: flow 'other' is default: "
        "true, and so is flow 'support' (call_flows/support.yaml): only one flow may answer the "
        "numbers no flow lists",
    ]


def test_a_flow_name_used_twice() -> None:
    flows, problems = load(
        {"a.yaml": SUPPORT, "b.yaml": SUPPORT.replace("+1500555000", "+1500555111")}
    )
    assert list(flows) == ["support"]
    assert "call_flows/b.yaml:1:1: flow 'support' is already defined in call_flows/a.yaml" in shown(
        problems
    )


def test_a_flow_that_answers_nothing_is_a_warning() -> None:
    _, problems = load({"lonely.yaml": "steps:\n  hi: {say: Hi.}\n"})
    assert shown(problems) == [
        "call_flows/lonely.yaml:1:1: warning: flow 'lonely' answers no number: give it numbers "
        "or default: true, or include it from another flow"
    ]


def test_a_language_the_routers_own_words_are_not_written_in_is_a_warning() -> None:
    french = SUPPORT.replace("languages: [en-US, vi-VN]", "languages: [en-US, vi-VN, fr-FR]")
    french = french.replace('vi-VN: "Xin chào."', 'vi-VN: "Xin chào.", fr-FR: "Bonjour."')
    french = french.replace('"Thanh toán, nhấn 1."', '"Thanh toán, nhấn 1.", fr-FR: "Tapez 1."')
    _, problems = load({"support.yaml": french})
    line, col = position(french, "fr-FR]")
    assert shown(problems) == [
        f"call_flows/support.yaml:{line}:{col}: warning: the router's own words to callers "
        "(connecting, all agents busy, sorry, goodbye) are not written in fr-FR: these callers "
        "hear them in en-US (written in: en-US, vi-VN, ar-XA)"
    ]
    # Another form of a language they are written in is fine: an ar-EG caller hears ar-XA.
    _, egyptian = load({"support.yaml": SUPPORT.replace("vi-VN", "ar-EG")})
    assert egyptian == []


def test_a_dial_into_the_routers_own_numbers() -> None:
    dialling = SUPPORT.replace(
        "route: {queue: billing, otherwise: voicemail}",
        'dial: {number: "+15005550006", otherwise: voicemail}',
    )
    _, problems = load({"support.yaml": dialling})
    line, col = position(dialling, 'number: "+1')
    assert shown(problems) == [
        f"call_flows/support.yaml:{line}:{col}: step 'billing': dial calls +15005550006, which "
        "this flow answers: every call would dial itself again"
    ]
    sales = 'flow: sales\nnumbers: ["+15005550006"]\nsteps:\n  hi: {say: Hi.}\n'
    _, problems = load({"support.yaml": dialling.replace("+15005550006", "+15005550009", 1),
                        "sales.yaml": sales})  # fmt: skip
    assert (
        "warning",
        "step 'billing': dial calls +15005550006, which flow 'sales' answers: the caller "
        "would start over there on a second call (include: sales does it in this one)",
    ) in [(p.severity, p.message) for p in problems]
    assert not any(p.severity == "error" for p in problems)


def test_language_codes_in_another_letter_case_are_the_usual_ones() -> None:
    lower = SUPPORT.replace("vi-VN", "vi-vn").replace("en-US", "EN-us")
    flows, problems = load_flow_texts({"support.yaml": lower})
    assert problems == []
    flow = flows["support"]
    assert flow.languages == ("en-US", "vi-VN")
    assert flow.voices["vi-VN"] == "Google.vi-VN-Standard-A"  # its voice is found
    welcome = flow.steps["welcome"].action
    assert isinstance(welcome, Say) and welcome.prompt.texts["vi-VN"] == "Xin chào."
    twice = SUPPORT.replace('vi-VN: "Xin chào."', 'vi-VN: "Xin chào.", vi-vn: "Chào."')
    _, problems = load({"support.yaml": twice})
    assert [p.message for p in problems] == ["step 'welcome': say gives vi-VN twice"]


def test_a_hold_line_needs_a_voicemail_to_offer() -> None:
    held = SUPPORT.replace(
        "route: {queue: billing, otherwise: voicemail}",
        "route: {queue: billing, hold: {max_wait: 60}}",
    )
    _, problems = load({"support.yaml": held})
    line, col = position(held, "hold:")
    assert shown(problems) == [
        f"call_flows/support.yaml:{line}:{col}: step 'billing': the hold line tells callers to "
        "press * to leave a message, but the route has no otherwise step to take them to one"
    ]
    to_bye = held.replace("hold: {max_wait: 60}", "otherwise: bye, hold: {max_wait: 60}")
    _, problems = load({"support.yaml": to_bye})
    assert [(p.severity, p.message) for p in problems] == [
        (
            "warning",
            "step 'billing': the hold line tells callers to press * to leave a message, but its "
            "otherwise step 'bye' leads to no voicemail step",
        )
    ]
    # Words first, then the voicemail, is fine.
    via_words = to_bye.replace("otherwise: bye, hold", "otherwise: sorry, hold") + (
        "  sorry: {say: Sorry., next: voicemail}\n"
    )
    assert load({"support.yaml": via_words})[1] == []


def test_a_route_without_otherwise_is_warned_about() -> None:
    bare = SUPPORT.replace("{queue: billing, otherwise: voicemail}", "{queue: billing}")
    _, problems = load({"support.yaml": bare})
    line, col = position(bare, "  billing:|route:")
    assert shown(problems) == [
        f"call_flows/support.yaml:{line}:{col}: warning: step 'billing': the route has no "
        "otherwise step: when nobody answers, callers are told to call back later and hung up "
        "on (recorded as abandoned); add one, a voicemail step"
    ]


def test_a_dequeue_from_a_queue_no_hold_line_fills() -> None:
    held = SUPPORT.replace(
        "route: {queue: billing, otherwise: voicemail}",
        "route: {queue: billing, otherwise: voicemail, hold: {max_wait: 60}}",
    )
    agents = 'flow: agents\nnumbers: ["+15005550007"]\nsteps:\n  take: {dequeue: biling}\n'
    _, problems = load({"support.yaml": held, "agents.yaml": agents})
    line, col = position(agents, "dequeue")
    assert [p for p in shown(problems) if "dequeue" in p] == [
        f"call_flows/agents.yaml:{line}:{col}: warning: step 'take': dequeue takes callers from "
        "queue 'biling', but no route with hold puts callers in line there (hold lines: billing)"
    ]
    fixed = agents.replace("biling", "billing")
    _, problems = load({"support.yaml": held, "agents.yaml": fixed})
    assert not [p for p in shown(problems) if "dequeue" in p]


def test_a_flow_whose_numbers_are_all_wrong_is_not_said_to_answer_none() -> None:
    _, problems = load({"support.yaml": SUPPORT.replace('"+15005550006"', '"15005550006"')})
    assert [p.message for p in problems] == [
        "number '15005550006' is not an E.164 number such as \"+15005550006\""
    ]


INCLUDING = SUPPORT.replace("    next: main\n", "    next: more\n  more: {include: lonely}\n")
TAKEN = 'flow: support\nnumbers: ["+15005550111"]\nsteps:\n  hi: {say: Hi.}\n'


@pytest.mark.parametrize(
    "files",
    [
        {"a.yaml": INCLUDING + "  broken: {say: [Hi.}\n"},  # a syntax error
        {"a.yaml": TAKEN, "b.yaml": INCLUDING},  # its name already taken
    ],
)
def test_a_flow_left_unread_may_be_the_one_including_another(files: dict[str, str]) -> None:
    # Whichever flow could not be read (or was refused) might include `lonely`: no guess.
    _, problems = load({**files, "lonely.yaml": "flow: lonely\nsteps:\n  hi: {say: Hi.}\n"})
    assert any(p.severity == "error" for p in problems)
    assert not [p for p in shown(problems) if "answers no number" in p]


HOURS = """\
flow: hours
languages: [en-US, vi-VN]
steps:
  say_hours:
    say: {en-US: "Open all day.", vi-VN: "Mở cửa cả ngày."}
    next: more
  more:
    menu:
      prompt: {en-US: "Press 1 to hear it again.", vi-VN: "Nhấn 1 để nghe lại."}
      options: {"1": say_hours}
      attempts: 1
      otherwise: done
  done: {}
"""


def with_hours_step(text: str = SUPPORT) -> str:
    text = text.replace('"1": billing', '"1": billing\n        "3": hours')
    return text.replace("  billing:\n", "  hours: {include: hours, next: main}\n  billing:\n")


def test_include_inlines_the_sub_flow() -> None:
    flows, problems = load({"support.yaml": with_hours_step(), "hours.yaml": HOURS})
    assert problems == []
    steps = flows["support"].steps  # type: ignore[attr-defined]
    assert steps["hours"].action is None and steps["hours"].next == "hours/say_hours"
    assert steps["hours/say_hours"].next == "hours/more"
    menu = steps["hours/more"].action
    assert isinstance(menu, Menu)
    assert menu.options[0].next == "hours/say_hours" and menu.otherwise == "hours/done"
    # Where the sub-flow ends, the call goes on with the include step's next.
    assert steps["hours/done"].next == "main"
    assert steps["hours/done"].at.path == "call_flows/hours.yaml"
    # The sub-flow is a flow of its own too, unchanged.
    assert flows["hours"].steps["done"].next is None  # type: ignore[attr-defined]


def test_include_is_validated_in_the_including_flow_languages() -> None:
    support = with_hours_step().replace("[en-US, vi-VN]", "[en-US, vi-VN, ar-XA]", 1)
    support = support.replace('"Xin chào."}', '"Xin chào.", ar-XA: "مرحبا."}')
    support = support.replace('"Thanh toán, nhấn 1."}', '"Thanh toán, nhấn 1.", ar-XA: "اضغط 1."}')
    support = support.replace('"Leave a message."', "Leave a message.")
    _, problems = load({"support.yaml": support, "hours.yaml": HOURS})
    say_at, prompt_at = position(HOURS, "say:"), position(HOURS, "prompt")
    included = "of flow 'hours' (included in flow 'support')"
    assert shown(problems) == [
        f"call_flows/hours.yaml:{say_at[0]}:{say_at[1]}: step 'say_hours' {included}: "
        "say has no text for ar-XA",
        f"call_flows/hours.yaml:{prompt_at[0]}:{prompt_at[1]}: step 'more' {included}: "
        "menu prompt has no text for ar-XA",
    ]


def test_include_problems() -> None:
    support = with_hours_step().replace("include: hours", "include: hour")
    _, problems = load({"support.yaml": support, "hours.yaml": HOURS})
    at = position(support, "include: hour")
    assert shown([p for p in problems if p.severity == "error"]) == [
        f"call_flows/support.yaml:{at[0]}:{at[1]}: step 'hours': includes 'hour', "
        "which is not a flow (did you mean 'hours'?)"
    ]
    _, problems = load({"support.yaml": with_hours_step(), "hours.yaml": HOURS + "  [broken\n"})
    assert "which could not be read (see call_flows/hours.yaml)" in problems[-1].message


def test_flows_including_each_other() -> None:
    looping = HOURS.replace("  done: {}", "  done: {include: support}")
    _, problems = load({"support.yaml": with_hours_step(), "hours.yaml": looping})
    at = position(with_hours_step(), "include: hours")
    # Reported once, where the loop closes when the flows are read in file-name order.
    assert shown(problems) == [
        f"call_flows/support.yaml:{at[0]}:{at[1]}: step 'hours': flows include each other in a "
        "loop: 'hours' -> 'support' -> 'hours'"
    ]


def test_an_include_can_close_a_loop_without_input() -> None:
    sub = "flow: note\nsteps:\n  note: {say: Note this.}\n"
    support = SUPPORT.replace(
        "    next: main\n", "    next: again\n  again: {include: note, next: welcome}\n", 1
    )
    support = support.replace("languages: [en-US, vi-VN]", "languages: [en-US]")
    support = support.replace(', vi-VN: "Xin chào."', "").replace(
        ', vi-VN: "Thanh toán, nhấn 1."', ""
    )
    support = support.replace("{language: vi-VN, next: main}", "main")
    _, problems = load({"support.yaml": support, "note.yaml": sub})
    assert [p.message for p in problems if p.severity == "error"] == [
        "step 'welcome': loop 'welcome' -> 'again' -> 'again/note' -> 'welcome' never waits for "
        "the caller (no menu, dial, route or voicemail in it), so the call would go round it "
        "forever"
    ]


def test_nested_includes_and_a_sub_flow_included_twice() -> None:
    outer = HOURS.replace("flow: hours", "flow: outer").replace(
        "  done: {}", "  done: {include: hours}"
    )
    support = with_hours_step().replace("include: hours", "include: outer")
    support = support.replace('"3": hours', '"3": hours\n        "4": again')
    support = support.replace("  billing:\n", "  again: {include: outer, next: bye}\n  billing:\n")
    flows, problems = load({"support.yaml": support, "outer.yaml": outer, "hours.yaml": HOURS})
    assert problems == []
    steps = flows["support"].steps  # type: ignore[attr-defined]
    assert steps["hours/done"].next == "hours/done/say_hours"
    assert steps["hours/done/done"].next == "main"
    assert steps["again/done/done"].next == "bye"


def test_the_samples_load_without_any_problem() -> None:
    flows, problems = load_flow_dir(SAMPLES)
    assert shown(problems) == []
    support = flows["support"]
    assert support.numbers == ("+15005550006",) and support.default
    assert support.languages == ("en-US", "vi-VN", "ar-XA")
    assert support.fallback == "voicemail"
    assert any(name.startswith("hours/") for name in support.steps)
    for step in support.steps.values():
        if isinstance(step.action, Say):
            assert all(step.action.prompt.covers(code) for code in support.languages)


def test_read_flow_files_skips_pools_hidden_and_other_files(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "pools.yaml", ".#b.yaml", "notes.txt"):
        (tmp_path / name).write_text("x: 1\n", encoding="utf-8")
    (tmp_path / "scenarios.yaml").mkdir()
    texts, problems = read_flow_files(tmp_path)
    assert list(texts) == ["a.yml", "b.yaml"] and problems == []


def test_a_file_that_is_not_utf8_is_one_more_problem_of_the_directory(tmp_path: Path) -> None:
    shutil.copytree(SAMPLES, tmp_path / "flows")
    (tmp_path / "flows" / "broken.yaml").write_bytes(b"flow: broken\nsteps:\n  a: {say: \xff}\n")
    flows, problems = load_flow_dir(tmp_path / "flows")
    assert "support" in flows
    path = tmp_path / "flows" / "broken.yaml"
    assert [str(p) for p in problems if p.path == str(path)] == [
        f"{path}:3:12: not UTF-8 text (byte 0xff at offset 31)"
    ]


def test_arabic_answers_are_heard_in_a_recognisers_code_which_a_flow_may_choose() -> None:
    arabic = SUPPORT.replace("languages: [en-US, vi-VN]", "languages: [en-US, vi-VN, ar-XA]")
    flows, problems = load({"support.yaml": arabic})
    assert flows["support"].speech_language("ar-XA") == "ar-EG"  # ar-XA names voices only
    assert flows["support"].speech_language("vi-VN") == "vi-VN"
    chosen = "speech_languages: {ar-XA: ar-SA, vi-vn: en-US, fr-FR: fr-FR, en-US: english}\n"
    text = arabic.replace("start: welcome\n", "start: welcome\n" + chosen)
    flows, problems = load({"support.yaml": text})
    assert flows["support"].speech_languages == {"ar-XA": "ar-SA", "vi-VN": "en-US"}
    about_speech = [p for p in problems if not p.message.startswith("step ")]  # no ar-XA texts
    assert [(p.severity, p.message) for p in about_speech] == [
        ("warning", "vi-VN callers would be heard as en-US"),
        ("error", "speech language for fr-FR, which is not in languages"),
        ("error", "'english' is not a language code such as en-US, vi-VN or ar-XA"),
    ]
