"""The flow engine on hand-built flows: no Redis, no HTTP, just (flow, state, input) -> answer."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ivr.flows import engine
from ivr.flows.engine import Context, FlowFault, NoRouter, RoutePlan, Router
from ivr.flows.model import (
    ANY_LANGUAGE,
    Branch,
    Case,
    Condition,
    Dequeue,
    Flow,
    Hold,
    Menu,
    Option,
    Prompt,
    Route,
    Say,
    SetVars,
    Step,
    SwitchLanguage,
    Voicemail,
)
from ivr.flows.state import (
    CallInfo,
    CallState,
    DialAttempt,
    Dialed,
    Endpoint,
    Gathered,
    Queued,
    Recorded,
)
from ivr.twiml import render, render_uncached
from ivr.voice.urls import VOICE_URLS

CALL = CallInfo("CA" + "1" * 32, "+84901111222", "+15005550006", "VN")
AT = 1_790_000_000.0  # a pinned instant: the engine never reads the clock


def ctx(router: Router | None = None, at: float = AT) -> Context:
    return Context(router or NoRouter(), VOICE_URLS, at)


def text(**by_language: str) -> Prompt:
    return Prompt({k.replace("_", "-"): v for k, v in by_language.items()})


def every(words: str) -> Prompt:
    return Prompt({ANY_LANGUAGE: words})


def flow(*steps: Step, languages: tuple[str, ...] = ("en-US", "vi-VN")) -> Flow:
    return Flow("test", "test.yaml", languages, steps[0].name, {s.name: s for s in steps})


MENU = Menu(
    prompt=text(en_US="Billing press 1.", vi_VN="Thanh toán nhấn 1."),
    options=(
        Option("1", "billing", keywords={"en-US": ("billing",), "vi-VN": ("thanh toán",)}),
        Option("9", "main", language="vi-VN"),
    ),
    speech=True,
    attempts=3,
    otherwise="bye",
)
SUPPORT = flow(
    Step("welcome", Say(every("Hello.")), next="main"),
    Step("main", MENU),
    Step("billing", Say(text(en_US="Billing.", vi_VN="Thanh toán.")), next="bye"),
    Step("bye", Say(every("Goodbye.")), hangup=True),
)


def xml(turn: engine.Turn) -> ET.Element:
    return ET.fromstring(render(turn.verbs, 1))


def said(turn: engine.Turn) -> list[str]:
    return [el.text or "" for el in xml(turn).iter("Say")]


def test_begin_plays_until_the_first_menu_and_waits() -> None:
    turn = engine.begin(SUPPORT, "v1", CALL, ctx())
    root = xml(turn)
    assert [v.tag for v in root] == ["Say", "Gather", "Redirect"]
    gather = root.find("Gather")
    assert gather is not None
    assert gather.attrib["numDigits"] == "1"
    assert gather.attrib["input"] == "dtmf speech"
    assert gather.attrib["action"] == "/voice/input?turn=1&lang=en-US"
    assert turn.state.step == "main" and not turn.state.ended


def test_a_key_leads_to_its_step_and_the_call_ends_with_hangup() -> None:
    first = engine.begin(SUPPORT, "v1", CALL, ctx())
    turn = engine.resume(SUPPORT, first.state, Gathered(digits="1"), ctx())
    assert said(turn) == ["Billing.", "Goodbye."]
    assert xml(turn)[-1].tag == "Hangup"
    assert turn.state.ended and turn.state.outcome == "completed"


def test_option_switches_language_and_reprompts_in_it() -> None:
    first = engine.begin(SUPPORT, "v1", CALL, ctx())
    turn = engine.resume(SUPPORT, first.state, Gathered(digits="9"), ctx())
    assert turn.state.language == "vi-VN"
    assert said(turn) == ["Thanh toán nhấn 1."]
    assert xml(turn).find("Gather").attrib["language"] == "vi-VN"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("event", "problem"),
    [(Gathered(), "didn't hear"), (Gathered(digits="7"), "not one of the choices")],
)
def test_silence_and_wrong_keys_reprompt_with_distinct_words(event: Gathered, problem: str) -> None:
    first = engine.begin(SUPPORT, "v1", CALL, ctx())
    turn = engine.resume(SUPPORT, first.state, event, ctx())
    words = said(turn)
    assert problem in words[0] and words[1] == "Billing press 1."
    assert turn.state.attempts == 1 and turn.state.step == "main"


def test_attempts_count_every_try_then_otherwise() -> None:
    state = engine.begin(SUPPORT, "v1", CALL, ctx()).state
    for event in (Gathered(), Gathered(digits="*")):
        state = engine.resume(SUPPORT, state, event, ctx()).state
        assert not state.ended
    last = engine.resume(SUPPORT, state, Gathered(digits="#"), ctx())
    assert said(last) == ["Goodbye."] and last.state.ended


def test_speech_matches_keywords_in_the_callers_language() -> None:
    state = engine.begin(SUPPORT, "v1", CALL, ctx()).state.evolve(language="vi-VN")
    turn = engine.resume(
        SUPPORT, state, Gathered(speech="Tôi cần Thanh Toán.", confidence=0.8), ctx()
    )
    assert said(turn)[0] == "Thanh toán."


@pytest.mark.parametrize(
    ("language", "keyword", "heard", "matches"),
    [
        # Arabic written with or without its optional short vowels and shadda.
        ("ar-XA", "العربية", "أريد العربيّة من فضلك", True),
        ("ar-XA", "مُساعدة", "مساعدة", True),
        # Hamza on alef and teh marbuta, written or not.
        ("ar-XA", "إنهاء", "انهاء المكالمه", True),
        # Devanagari's vowel signs are marks of their word, not gaps in it: "bill" is not "bol".
        ("hi-IN", "बिल", "मुझे बिल चाहिए।", True),
        ("hi-IN", "बिल", "बोल", False),
    ],
)
def test_speech_matches_keywords_across_optional_and_combining_marks(
    language: str, keyword: str, heard: str, matches: bool
) -> None:
    menu = Menu(
        prompt=every("Choose."),
        options=(Option("1", "billing", keywords={language: (keyword,)}),),
        speech=True,
        otherwise="bye",
    )
    marked = flow(
        Step("main", menu),
        Step("billing", Say(every("Billing.")), hangup=True),
        Step("bye", Say(every("Goodbye.")), hangup=True),
        languages=(language,),
    )
    state = engine.begin(marked, "v1", CALL, ctx()).state
    turn = engine.resume(marked, state, Gathered(speech=heard, confidence=0.9), ctx())

    assert turn.events[0].chosen == ("1" if matches else None)  # type: ignore[attr-defined]


def test_low_confidence_speech_is_an_invalid_try() -> None:
    state = engine.begin(SUPPORT, "v1", CALL, ctx()).state
    turn = engine.resume(SUPPORT, state, Gathered(speech="billing", confidence=0.1), ctx())
    assert turn.state.attempts == 1 and turn.state.step == "main"


def test_branch_on_caller_prefix_sets_and_switches() -> None:
    branching = flow(
        Step("start", Branch((Case(Condition(caller_prefix=("+84",)), "vn"),), "other")),
        Step("vn", SetVars({"market": "vn"}), next="speak"),
        Step("speak", SwitchLanguage("vi-VN"), next="hello"),
        Step("other", Say(every("Other.")), hangup=True),
        Step("hello", Say(text(en_US="Hello.", vi_VN="Xin chào.")), hangup=True),
    )
    turn = engine.begin(branching, "v1", CALL, ctx())
    assert said(turn) == ["Xin chào."]
    assert turn.state.variables == {"market": "vn"}
    elsewhere = engine.begin(branching, "v1", CallInfo(CALL.sid, "+4420"), ctx())
    assert said(elsewhere) == ["Other."]


def test_a_loop_without_input_is_a_flow_fault_not_a_hang() -> None:
    looping = flow(Step("a", Say(every("a")), next="b"), Step("b", None, next="a"))
    with pytest.raises(FlowFault):
        engine.begin(looping, "v1", CALL, ctx())


class TwoPools(NoRouter):
    def plan(self, route: Route, state: CallState, at: float) -> RoutePlan:
        return RoutePlan(
            (
                DialAttempt("hanoi", (Endpoint("number", "+84901234567"),), 20),
                DialAttempt("cairo", (Endpoint("client", "amr"),), 15, "+15005550006"),
            ),
            "hanoi on shift",
        )


ROUTED = flow(
    Step("route", Route("billing", otherwise="vm")),
    Step("vm", Voicemail(prompt=every("Leave a message."), max_seconds=60)),
)


def test_route_dials_each_pool_in_turn_then_voicemail() -> None:
    turn = engine.begin(ROUTED, "v1", CALL, ctx(TwoPools()))
    root = xml(turn)
    assert [v.tag for v in root] == ["Say", "Dial"]
    assert root[1].attrib["timeout"] == "20" and root[1][0].text == "+84901234567"
    turn = engine.resume(ROUTED, turn.state, Dialed("no-answer"), ctx(TwoPools()))
    root = xml(turn)
    assert "still trying" in (root[0].text or "")
    assert root[1][0].tag == "Client" and root[1].attrib["callerId"] == "+15005550006"
    turn = engine.resume(ROUTED, turn.state, Dialed("busy"), ctx(TwoPools()))
    root = xml(turn)
    assert [v.tag for v in root] == ["Say", "Say", "Record"]
    assert "busy" in (root[0].text or "")
    assert root[2].attrib["maxLength"] == "60"
    done = engine.resume(
        ROUTED, turn.state, Recorded("https://api.twilio.com/r/RE1", 12), ctx(TwoPools())
    )
    assert done.state.outcome == "voicemail" and xml(done)[-1].tag == "Hangup"


def test_answered_route_ends_well() -> None:
    turn = engine.begin(ROUTED, "v1", CALL, ctx(TwoPools()))
    done = engine.resume(ROUTED, turn.state, Dialed("completed"), ctx(TwoPools()))
    assert done.state.outcome == "answered" and [v.tag for v in xml(done)] == ["Hangup"]


def test_route_without_pools_goes_to_otherwise_with_words_first() -> None:
    turn = engine.begin(ROUTED, "v1", CALL, ctx())
    assert [v.tag for v in xml(turn)] == ["Say", "Say", "Record"]


def test_cached_rendering_equals_one_voice_response() -> None:
    turn = engine.begin(SUPPORT, "v1", CALL, ctx())
    assert render(turn.verbs, 1) == render_uncached(turn.verbs).replace("__TURN__", "1")


def test_state_round_trips_through_json() -> None:
    turn = engine.begin(ROUTED, "v1", CALL, ctx(TwoPools()))
    assert CallState.from_json(turn.state.to_json()) == turn.state


def test_a_language_choice_menu_speaks_each_language_in_its_voice() -> None:
    choose = flow(
        Step(
            "choose",
            Menu(
                prompt=text(en_US="For English press 1.", vi_VN="Tiếng Việt nhấn 2."),
                options=(
                    Option("1", "bye", language="en-US"),
                    Option("2", "bye", language="vi-VN"),
                ),
            ),
        ),
        Step("bye", Say(every("Bye.")), hangup=True),
    )
    says = xml(engine.begin(choose, "v1", CALL, ctx())).findall("Gather/Say")
    assert [(s.attrib["language"], s.text) for s in says] == [
        ("en-US", "For English press 1."),
        ("vi-VN", "Tiếng Việt nhấn 2."),
    ]
    assert says[1].attrib["voice"] == "Google.vi-VN-Standard-A"


HOLDING = flow(
    Step("route", Route("billing", otherwise="vm", hold=Hold(music="https://example.com/m.mp3"))),
    Step("vm", Voicemail()),
)


def test_busy_agents_put_the_caller_in_line_then_voicemail_on_request() -> None:
    turn = engine.begin(HOLDING, "v1", CALL, ctx(TwoPools()))
    for status in ("no-answer", "busy"):
        turn = engine.resume(HOLDING, turn.state, Dialed(status), ctx(TwoPools()))
    root = xml(turn)
    assert [v.tag for v in root] == ["Say", "Enqueue"]
    assert root[1].text == "billing" and root[1].attrib["waitUrl"] == "/voice/hold?lang=en-US"
    assert root[1].attrib["action"] == "/voice/queue?turn=1&lang=en-US"
    left = engine.resume(HOLDING, turn.state, Queued("leave"), ctx(TwoPools()))
    assert [v.tag for v in xml(left)] == ["Say", "Record"]
    bridged = engine.resume(HOLDING, turn.state, Queued("bridged"), ctx(TwoPools()))
    assert bridged.state.outcome == "answered"


def test_no_pool_on_shift_skips_the_line() -> None:
    turn = engine.begin(HOLDING, "v1", CALL, ctx())
    assert [v.tag for v in xml(turn)] == ["Say", "Say", "Record"]


def test_dequeue_connects_an_agent_to_the_line() -> None:
    agents_line = flow(Step("take", Dequeue("billing")))
    turn = engine.begin(agents_line, "v1", CALL, ctx())
    dial = xml(turn).find("Dial/Queue")
    assert dial is not None and dial.text == "billing"
    assert dial.attrib["url"] == "/voice/dequeued?queue=billing"  # the caller is answered then
    empty = engine.resume(agents_line, turn.state, Dialed("failed"), ctx())
    assert "No callers are waiting" in said(empty)[0]
