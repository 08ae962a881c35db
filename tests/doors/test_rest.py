"""The REST door: its pure parsing and answers, then whole calls in-process against the embedded demo bot.

Keypad turns travel as JSON, forms or real tones in every audio type (tones need no recogniser, so
each type is checked exactly); spoken turns use the menu's labels, which the recogniser gets as hints.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import weakref

import aiohttp
import pytest
import pytest_asyncio
from conversation.manual_clock import ManualClock
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from adapter.api_errors import ApiError
from adapter.app_state import CALLS, SERVICES
from adapter.audio.decode import decode_audio
from adapter.audio.encode import FORMATS, encode_audio
from adapter.audio.pcm import Pcm
from adapter.calls.events import BotSaid, Heard, Listening, Transfer
from adapter.calls.keypad import DigitSpec, ExpectedInput
from adapter.calls.replies import Menu, MenuOption
from adapter.doors import rest_calls
from adapter.doors.rest import (
    REST_CALLS,
    accepted,
    audio_format,
    json_object,
    parse_digits,
    parse_new_call,
    reply_format,
    spoken_language,
    turn_json,
)
from adapter.doors.rest_calls import AUDIO_KEPT, TurnResult

from .conftest import door_settings, keys, running, start_call, stub_kore, stub_settings

module_loop = pytest.mark.asyncio(loop_scope="module")

MENU = ["Check balance", "Transfer money", "Talk to an agent"]


# --- parsing and answers, no sockets ---------------------------------------------------------------


def test_accept_ranges_come_best_first():
    assert accepted("application/json;q=0.5, audio/basic, audio/*;q=0.8") == [
        "audio/basic", "audio/*", "application/json"]
    assert accepted("audio/wav;q=0, */*") == ["*/*"]
    assert accepted("audio/L16;rate=8000") == ["audio/l16;rate=8000"]


@pytest.mark.parametrize(("accept", "fmt"), [
    ("", None), ("*/*", None), ("application/json", None), ("text/html", None), ("audio/ogg", None),
    ("audio/wav", "wav16k"), ("audio/wav;rate=8000", "wav8k"), ("audio/basic", "ulaw8k"), ("audio/PCMU", "ulaw8k"),
    ("audio/PCMA", "alaw8k"), ("audio/mpeg", "mp3"), ("audio/*", "wav16k"),
    ("application/json;q=0.1, audio/basic", "ulaw8k"), ("application/json, audio/basic;q=0.5", None),
])
def test_a_turn_is_answered_with_audio_only_when_accept_prefers_it(accept, fmt):
    found = reply_format(accept)
    assert (found.name if found else None) == fmt


def test_the_audio_format_comes_from_the_query_then_accept():
    assert audio_format(None, None).name == "wav16k"
    assert audio_format("audio/basic", "mp3").name == "mp3"
    assert audio_format("text/html, audio/PCMA", None).name == "alaw8k"
    l16 = audio_format("audio/L16;rate=8000", None)
    assert (l16.name, l16.content_type_for(16000)) == ("l16", "audio/L16;rate=8000")
    with pytest.raises(ApiError) as bad:
        audio_format(None, "flac")
    assert bad.value.status == 400 and "wav16k" in bad.value.message
    with pytest.raises(ApiError) as refused:
        audio_format("audio/ogg, text/html", None)
    assert (refused.value.status, refused.value.code) == (406, "not_acceptable")


def test_digits_are_keypad_keys_only():
    assert parse_digits(" 1234 # ") == "1234#"
    assert parse_digits("*0") == "*0"
    for bad in ("", "12a", 1234, None, "1" * 65, "A"):
        with pytest.raises(ApiError) as err:
            parse_digits(bad)
        assert err.value.status == 400


def test_the_language_spoken_is_the_voices():
    assert [spoken_language(v) for v in ("en-us", "en-GB+f3", "gmw/en-US", "ko")] == ["en", "en", "en", "ko"]


def test_a_new_call_needs_from_and_to_and_our_language():
    assert parse_new_call({"from": " +1555 ", "to": "sip:ivr@x", "language": "en-US"}, "en").caller == "+1555"
    for body, code in [({"to": "+1"}, "bad_request"), ({"from": "", "to": "+1"}, "bad_request"),
                       ({"from": "+1", "to": 5}, "bad_request"), ({"from": "+1\n2", "to": "+1"}, "bad_request"),
                       ({"from": "+1", "to": "+2", "language": "english!"}, "bad_request"),
                       ({"from": "+1", "to": "+2", "language": "fr-FR"}, "unsupported_language")]:
        with pytest.raises(ApiError) as err:
            parse_new_call(body, "en")
        assert (err.value.status, err.value.code) == (400, code)


def test_a_turn_answer_carries_what_was_heard_said_and_asked():
    menu = Menu((MenuOption("1", "Savings", "savings"),))
    expect = ExpectedInput(speech=False, digits=DigitSpec(min=8, max=8, finish_on_key="#"))
    result = TurnResult(heard=Heard("savings", "dtmf", digits="1"), said=[BotSaid(("Pick one.",), menu)],
                        end=Listening(expect, menu), audio=3)
    assert turn_json(result, "dtmf", "http://x/v1/calls/c/audio/3") == {
        "transcript": "savings", "input": "dtmf", "digits": "1",
        "bot": {"texts": ["Pick one."], "menu": [{"digit": "1", "label": "Savings"}]},
        "spoken": [], "audio_url": "http://x/v1/calls/c/audio/3",
        "expect": {"speech": False, "digits": {"num": None, "min": 8, "max": 8, "finish_on_key": "#"}},
        "end_of_call": False, "transfer_to": None,
    }
    moved = turn_json(TurnResult(end=Transfer("sip:agent@x")), "speech", None)
    assert (moved["input"], moved["transcript"], moved["end_of_call"], moved["transfer_to"]) == (
        "speech", "", True, "sip:agent@x")


# --- whole calls, in-process ---------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service():
    async with running(door_settings(KORE_VOICE_TURNS_PER_MINUTE="5")) as client:
        yield client


@module_loop
async def test_the_welcome_is_the_bots_answer_with_its_menu_and_audio(service):
    resp = await service.post("/v1/calls", json={"from": "+15551230000", "to": "+15559870000", "language": "en"})
    assert resp.status == 201
    call = await resp.json()
    assert resp.headers["Location"] == f"/v1/calls/{call['id']}"
    welcome = call["welcome"]
    assert welcome["texts"] == ["Welcome to Demo Bank.", "How can I help you today?"]
    assert [o["label"] for o in welcome["menu"]] == MENU and welcome["end_of_call"] is False
    [spoken] = welcome["spoken"]
    assert spoken.startswith("Welcome to Demo Bank.") and "For Check balance, press 1." in spoken
    assert welcome["audio_url"] == str(service.make_url(f"/v1/calls/{call['id']}/audio/0"))
    audio = await service.get(f"/v1/calls/{call['id']}/audio/0")
    assert audio.status == 200 and audio.content_type == "audio/wav"
    assert decode_audio(await audio.read()).duration_s > 5
    assert "decode" not in resp.headers["Server-Timing"] and "bot;dur=" in resp.headers["Server-Timing"]


@module_loop
@pytest.mark.blocks_loop(reason="the test converts its audio (ffmpeg for mp3/ogg) on the loop: use asyncio.to_thread")
@pytest.mark.parametrize(("name", "content_type", "options"), [
    ("wav", "audio/wav", None),
    ("ulaw", "audio/basic", ("-t", "raw", "-e", "mu-law")),
    ("pcmu", "audio/PCMU", ("-t", "raw", "-e", "mu-law")),
    ("alaw", "audio/PCMA", ("-t", "raw", "-e", "a-law")),
    ("l16", "audio/L16;rate=8000", ("-t", "raw", "-e", "signed-integer", "-b", "16", "-B")),
    ("mp3", "audio/mpeg", ("-b:a", "32k")),
    ("ogg", "audio/ogg", ("-c:a", "libvorbis")),
    ("sniffed", None, None),
])
async def test_keypad_tones_in_every_audio_type_choose_from_the_menu(service, tone_wav, converted, name, content_type,
                                                                     options):
    call = await start_call(service)
    wav = await asyncio.to_thread(tone_wav, "1")  # sox and ffmpeg: off the loop
    body = await asyncio.to_thread(converted, wav, f"tones.{name}", *options) if options else wav.read_bytes()
    headers = {"Content-Type": content_type} if content_type else {}
    resp = await service.post(f"/v1/calls/{call['id']}/turns", data=body, headers=headers)
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert (answer["input"], answer["digits"], answer["transcript"]) == ("dtmf", "1", "balance")
    assert "$2,450.18" in answer["bot"]["texts"][0] and answer["end_of_call"] is False
    assert "decode;dur=" in resp.headers["Server-Timing"]


@module_loop
async def test_a_spoken_menu_label_uploaded_as_multipart_reaches_the_bot_as_its_payload(service, spoken):
    call = await start_call(service)
    form = aiohttp.FormData()
    wav = await asyncio.to_thread(spoken, "transfer money")
    form.add_field("audio", wav.read_bytes(), filename="turn.wav", content_type="audio/wav")
    resp = await service.post(f"/v1/calls/{call['id']}/turns", data=form)
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert (answer["input"], answer["transcript"].lower()) == ("speech", "transfer money")
    assert "8 digit account number" in answer["bot"]["texts"][0]
    assert answer["expect"] == {"speech": False, "digits": {"num": None, "min": 8, "max": 8, "finish_on_key": "#"}}
    assert "recognise;dur=" in resp.headers["Server-Timing"]


@module_loop
async def test_keys_as_json_form_and_multipart_fields(service):
    call = await start_call(service)
    transfer = await (await keys(service, call["id"], "2")).json()
    assert (transfer["transcript"], transfer["digits"]) == ("transfer", "2")
    account = await service.post(f"/v1/calls/{call['id']}/turns", data={"Digits": "12345678#"})
    answer = await account.json()
    assert (answer["input"], answer["digits"], answer["transcript"]) == ("dtmf", "12345678", "12345678")
    assert "How many dollars" in answer["bot"]["texts"][0]
    form = aiohttp.FormData()
    form.add_field("Digits", "250#")
    answer = await (await service.post(f"/v1/calls/{call['id']}/turns", data=form)).json()
    assert answer["digits"] == "250" and "sent 250 dollars to account" in " ".join(answer["bot"]["texts"])


@module_loop
async def test_an_unfinished_keypad_entry_is_a_no_match_at_once(service):
    call = await start_call(service)
    await keys(service, call["id"], "2")
    answer = await (await keys(service, call["id"], "1234")).json()
    assert answer["transcript"] == "" and answer["spoken"] == ["Sorry, I didn't catch that."]
    assert answer["expect"]["digits"]["min"] == 8 and answer["end_of_call"] is False


@module_loop
@pytest.mark.blocks_loop(reason="the test decodes every format (ffmpeg for mp3) on the loop: use asyncio.to_thread")
async def test_accept_audio_answers_with_the_reply_itself(service):
    call = await start_call(service)
    resp = await keys(service, call["id"], "1", Accept="audio/basic")
    assert resp.status == 200 and resp.headers["Content-Type"] == "audio/basic"
    assert resp.headers["X-End-Of-Call"] == "false" and resp.headers["X-Transcript"] == "balance"
    reply = decode_audio(await resp.read(), "audio/basic")
    assert reply.rate == 8000 and reply.duration_s > 3
    same = await service.get(f"/v1/calls/{call['id']}/audio/1", headers={"Accept": "audio/basic"})
    assert await same.read() == await resp.read()
    for fmt in FORMATS.values():
        got = await service.get(f"/v1/calls/{call['id']}/audio/1?format={fmt.name}")
        assert got.status == 200 and got.headers["Content-Type"] == fmt.content_type_for(16000)
        decoded = await asyncio.to_thread(decode_audio, await got.read(), got.headers["Content-Type"])  # ffmpeg
        assert abs(decoded.duration_s - reply.duration_s) < 0.1


@module_loop
async def test_a_menu_choice_by_key_transfers_the_call(service):
    call = await start_call(service)
    answer = await (await keys(service, call["id"], "3")).json()
    assert answer["transfer_to"] == "sip:agent@demo-bank.example" and answer["end_of_call"] is True
    assert answer["spoken"] == ["Connecting you to an agent. Please hold."]
    again = await keys(service, call["id"], "1")
    assert (again.status, (await again.json())["error"]["code"]) == (409, "call_ended")
    goodbye = await service.get(URL(answer["audio_url"]).path)
    assert goodbye.status == 200  # the phone system still plays it
    assert (await service.delete(f"/v1/calls/{call['id']}")).status == 204  # its hang-up, after the bot's


@module_loop
async def test_hang_up_then_the_call_is_over(service):
    call = await start_call(service)
    assert (await service.delete(f"/v1/calls/{call['id']}")).status == 204
    assert (await service.delete(f"/v1/calls/{call['id']}")).status == 204  # phone systems send it again
    assert (await keys(service, call["id"], "1")).status == 409
    assert (await service.get(f"/v1/calls/{call['id']}/audio/0")).status == 404  # nobody will play it now
    assert (await service.delete("/v1/calls/call-unknown")).status == 404


@module_loop
async def test_one_turn_at_a_time(service):
    call = await start_call(service)
    await keys(service, call["id"], "2")
    await keys(service, call["id"], "12345678#")
    slow = asyncio.create_task(keys(service, call["id"], "250#"))  # the bot takes 2 s to transfer
    rest_call = service.app[REST_CALLS].find(call["id"])
    async with asyncio.timeout(10):  # the turn has reached the server (bounded: a lost request fails here)
        while not rest_call.busy:  # noqa: ASYNC110 (the server's state, seen from the test)
            await asyncio.sleep(0.01)
    second = await keys(service, call["id"], "1")
    assert second.status == 429 and second.headers["Retry-After"] == "1"
    assert (await second.json())["error"]["code"] == "turn_in_progress"
    first = await slow
    assert first.status == 200 and "sent 250 dollars" in " ".join((await first.json())["bot"]["texts"])


@module_loop
async def test_a_turn_flood_is_refused_and_other_calls_go_on(service):
    flooded, other = await start_call(service), await start_call(service)
    for _ in range(5):
        assert (await keys(service, flooded["id"], "9")).status == 200
    refused = await keys(service, flooded["id"], "9")
    assert refused.status == 429 and (await refused.json())["error"]["code"] == "too_many_turns"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    bad = await service.post(f"/v1/calls/{other['id']}/turns", data=b"not audio", headers={"Content-Type": "audio/wav"})
    assert bad.status == 415
    fine = await keys(service, other["id"], "1")
    assert fine.status == 200 and (await fine.json())["transcript"] == "balance"


async def test_an_idle_call_is_hung_up_then_forgotten():
    clock = ManualClock()
    async with running(door_settings(KORE_VOICE_CALL_IDLE_SECONDS="30"), clock=clock) as client:
        call = await start_call(client)
        clock.advance(29)
        assert (await keys(client, call["id"], "9")).status == 200
        clock.advance(31)
        conversation = client.app[REST_CALLS].find(call["id"]).conversation
        await conversation.hang_up("test over")  # waits for the idle hang-up already queued
        assert conversation.state.closed_reason == "idle"
        assert (await keys(client, call["id"], "9")).status == 409
        clock.advance(300)  # an ended call is kept whole for 5 minutes, then only its id is
        assert (await keys(client, call["id"], "9")).status == 409
        assert (await client.get(f"/v1/calls/{call['id']}/audio/0")).status == 404
        assert (await client.delete(f"/v1/calls/{call['id']}")).status == 204


async def test_a_body_over_the_byte_limit_is_413_and_the_call_goes_on():
    async with running(door_settings(KORE_VOICE_MAX_AUDIO_BYTES="65536")) as client:
        call = await start_call(client)
        big = encode_audio(Pcm.silence(3.0, 16000), "wav16k")  # 96 kB: short, but over the byte limit
        resp = await client.post(f"/v1/calls/{call['id']}/turns", data=big, headers={"Content-Type": "audio/wav"})
        body = await resp.text()
        assert resp.status == 413 and "\n" not in body.strip()
        assert (await resp.json())["error"]["code"] == "too_large"
        fine = await keys(client, call["id"], "1")
        assert fine.status == 200 and (await fine.json())["transcript"] == "balance"


# --- bounded memory, hostile and odd input ---------------------------------------------------------------

ONE_LINE_ERRORS = {400: "bad_request", 404: "unknown_audio", 415: "unsupported_media"}


async def one_line_error(resp: aiohttp.ClientResponse, status: int) -> str:
    """The error's message, once its status, code and one-line body are checked."""
    body = await resp.text()
    assert resp.status == status and "\n" not in body.strip(), body[:300]
    error = (await resp.json())["error"]
    assert error["code"] == ONE_LINE_ERRORS[status]
    return error["message"]


@module_loop
async def test_reply_audio_in_many_formats_keeps_few_encodings(service):
    call = await start_call(service)
    url = f"/v1/calls/{call['id']}/audio/0"
    sizes = []
    for accept in [*(f"audio/L16;rate={r}" for r in (8000, 16000, 22050, 24000, 32000, 44100, 48000)),
                   "audio/basic", "audio/PCMA", "audio/wav;rate=8000"]:
        resp = await service.get(url, headers={"Accept": accept})
        assert resp.status == 200, accept
        sizes.append(len(await resp.read()))
    audio = await service.app[REST_CALLS].find(call["id"]).audio(0)
    assert audio.kept_bytes <= 2 * max(sizes)
    refused = await service.get(url, headers={"Accept": "audio/L16;rate=12345"})
    assert refused.status == 406 and (await refused.json())["error"]["code"] == "not_acceptable"


@module_loop
async def test_a_call_keeps_its_latest_replies_and_ended_calls_are_kept_whole_only_so_many(service, monkeypatch):
    call = await start_call(service)
    for _ in range(AUDIO_KEPT):
        assert (await keys(service, call["id"], "9")).status == 200
    audio = f"/v1/calls/{call['id']}/audio"
    assert (await service.get(f"{audio}/0")).status == 404 and (await service.get(f"{audio}/1")).status == 200
    monkeypatch.setattr(rest_calls, "ENDED_CALLS_KEPT", 1)
    first, second = await start_call(service), await start_call(service)
    call_object = service.app[REST_CALLS].find(first["id"])
    for ended in (first, second):  # the bot ends both: each keeps its goodbye for the phone system to play
        assert (await (await keys(service, ended["id"], "3")).json())["end_of_call"] is True
    assert (await service.get(f"/v1/calls/{second['id']}/audio/1")).status == 200
    assert (await service.get(f"/v1/calls/{first['id']}/audio/1")).status == 404  # over the limit: only its id
    gone = weakref.ref(call_object)
    del call_object
    gc.collect()
    assert gone() is None  # nothing (not even the timer that would forget it later) keeps the ended call alive
    assert (await keys(service, first["id"], "1")).status == 409
    assert (await service.delete(f"/v1/calls/{first['id']}")).status == 204


@module_loop
async def test_odd_bodies_and_paths_get_a_precise_4xx_and_the_call_goes_on(service, tone_wav):
    deep = b"[" * 100_000 + b"]" * 100_000
    new = await service.post("/v1/calls", data=b'{"from": ' + deep + b"}", headers={"Content-Type": "application/json"})
    assert "nests deeper" in await one_line_error(new, 400)
    call = await start_call(service)
    turns = f"/v1/calls/{call['id']}/turns"
    deep_turn = await service.post(turns, data=deep, headers={"Content-Type": "application/json"})
    assert "nests deeper" in await one_line_error(deep_turn, 400)
    wav = (await asyncio.to_thread(tone_wav, "1")).read_bytes()
    as_form = await service.post(turns, data=wav, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert "Content-Type: audio/wav" in await one_line_error(as_form, 415)
    huge = await service.get(f"/v1/calls/{call['id']}/audio/{'9' * 5000}")
    await one_line_error(huge, 404)
    fine = await keys(service, call["id"], "1")
    assert fine.status == 200 and (await fine.json())["transcript"] == "balance"


PART = b'--x\r\nContent-Disposition: form-data; name="Digits"\r\n'


@module_loop
@pytest.mark.parametrize(("content_type", "body"), [
    ("multipart/form-data", b"--x\r\n\r\n--x--"),
    ("multipart/form-data; boundary=x", b"garbage"),
    ('multipart/form-data; boundary=""', b"--\r\n"),
    ("multipart/form-data; boundary=" + "x" * 100, b"--x"),
    ("multipart/form-data; boundary=x", PART + b"\r\n\xff\xfe\r\n--x--\r\n"),
    ("multipart/form-data; boundary=x", PART + b"Content-Type: text/plain; charset=nope\r\n\r\n1\r\n--x--\r\n"),
], ids=["no-boundary", "garbage", "empty-boundary", "long-boundary", "not-utf8", "unknown-charset"])
async def test_a_malformed_multipart_body_is_400(service, content_type, body):
    call = await start_call(service)
    resp = await service.post(f"/v1/calls/{call['id']}/turns", data=body, headers={"Content-Type": content_type})
    assert "multipart" in await one_line_error(resp, 400)


@module_loop
async def test_an_ended_call_leaves_nothing_in_the_session_store(service):
    store = service.app[SERVICES].store
    call = await start_call(service)
    assert await store.get(call["id"]) is not None
    await service.delete(f"/v1/calls/{call['id']}")
    assert await store.get(call["id"]) is None


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"null", b'"x"', b"\xff\xfe", b'{"from": 1e999999}',
                                  b"[" * 5000, b'{"digits": ' + b"[" * 2000 + b"]" * 2000 + b"}"])
def test_odd_json_bodies_are_400(body):
    with pytest.raises(ApiError) as err:
        parse_new_call(json_object(body), "en")
    assert err.value.status == 400


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.integers(0, 3000).map(lambda n: b'{"from": ' + b"[" * n + b"]" * n + b"}"),
                 st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["from", "to", "language", "digits"])
                                                                | st.text(max_size=5), inner, max_size=4),
    max_leaves=20).map(lambda value: json.dumps(value).encode())))
def test_any_json_body_is_a_new_call_keys_or_a_4xx(body):
    for parse in (lambda value: parse_new_call(value, "en"), lambda value: parse_digits(value.get("digits"))):
        try:
            parse(json_object(body))
        except ApiError as exc:
            assert 400 <= exc.status < 500 and "\n" not in exc.message


# --- failures ------------------------------------------------------------------------------------------


async def test_a_failed_bot_gives_callers_an_error_id_and_the_log_the_detail(caplog):
    caplog.set_level(logging.WARNING, logger="adapter.doors.rest")
    async with stub_kore([]) as url, running(stub_settings(url)) as client:
        call = await start_call(client)
        resp = await keys(client, call["id"], "1")
        assert resp.status == 502
        error = (await resp.json())["error"]
    error_id = resp.headers["X-Error-Id"]
    assert error == {"code": "bot_error", "message": f"the bot failed; error id {error_id}"}
    [line] = [r.getMessage() for r in caplog.records if r.name == "adapter.doors.rest" and error_id in r.getMessage()]
    assert "stub failure" in line and call["id"] in line
    assert "eyJ" not in line  # the JWT the bot echoed is redacted


async def test_a_call_whose_welcome_never_comes_is_hung_up_and_frees_its_slot():
    clock, requests = ManualClock(), []
    async with stub_kore(requests) as url, running(stub_settings(
            url, KORE_MODE="async", KORE_CALLBACK_TOKEN="callback-token-0123456789", KORE_VOICE_MAX_CALLS="1"),
            clock=clock) as client:
        for attempt in (1, 2):  # the second finds the one slot free again
            creating = asyncio.create_task(client.post("/v1/calls", json={"from": "+1555", "to": "+1666"}))
            async with asyncio.timeout(30):
                while len(requests) < 2 * attempt - 1:  # the bot has the call (and will never call back)
                    await asyncio.sleep(0.01)
            clock.advance(14)  # past the 13 s give-up
            resp = await creating
            assert resp.status == 504, await resp.text()
            assert len(client.app[CALLS]) == 0
            assert requests[-1]["message"]["val"] == "SESSION_CLOSURE"
