"""Whole TwiML calls in-process, Twilio played by the official library: signed webhooks, our TwiML parsed
with xml.etree (or compared with what `VoiceResponse` builds), prompts fetched as Twilio's player would,
recordings served from 127.0.0.1. The embedded demo bank answers speech and keys; a stub bot counts what
reaches it (`SESSION_CLOSURE` once, an input never twice)."""

from __future__ import annotations

import asyncio
import logging
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientResponse
from conversation.manual_clock import ManualClock
from twilio.twiml.voice_response import Dial, VoiceResponse

from adapter.app_state import CALLS
from adapter.audio.decode import decode_audio
from adapter.calls.info import CallInfo
from adapter.doors.twilio.call_sid import user_id
from adapter.doors.twilio.twiml import goodbye
from adapter.doors.twilio.voice import CALL_GONE, TWILIO_CALLS, TwilioCall

from ..conftest import door_settings, run, running, stub_kore, stub_settings
from .conftest import (
    ACCOUNT_SID,
    CALLED,
    CALLER,
    TOKEN,
    TwilioPeer,
    call_params,
    new_call_sid,
    on_clock,
    twilio_settings,
)

module_loop = pytest.mark.asyncio(loop_scope="module")

PUBLIC = "https://voice.example.com/kv"  # behind a proxy that strips /kv
WAVE_FORMAT_MULAW = 7
GONE = str(goodbye(CALL_GONE))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bank():
    """The embedded demo bank, reached by Twilio at PUBLIC."""
    async with running(twilio_settings(KORE_VOICE_PUBLIC_URL=PUBLIC)) as client:
        yield TwilioPeer(client, PUBLIC)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stub(stub_requests):
    """The stub bot (one no-match and one silence are all a caller gets), reached by Twilio at the test
    server's own URL."""
    async with stub_kore(stub_requests) as url:
        settings = stub_settings(url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=TOKEN,
                                 KORE_VOICE_MAX_NO_MATCH="1", KORE_VOICE_MAX_NO_INPUT="1")
        async with running(settings) as client:
            yield TwilioPeer(client)


async def twiml(resp: ClientResponse) -> ET.Element:
    text = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/xml", text
    root = ET.fromstring(text)
    assert root.tag == "Response"
    return root


async def start(peer: TwilioPeer, sid: str) -> ET.Element:
    return await twiml(await peer.post("/twilio/voice", call_params(sid)))


def call_of(peer: TwilioPeer, sid: str) -> TwilioCall:
    return peer.client.app[TWILIO_CALLS].get(user_id(sid))


def listens_for_speech(root: ET.Element, base: str, answer: int) -> str | None:
    """Check the speech-turn shape (twiml.py's docstring) and give its prompt's URL."""
    gather, record, redirect = root
    action = f"{base}/twilio/recording?t={answer}"
    assert (gather.tag, record.tag, redirect.tag) == ("Gather", "Record", "Redirect")
    assert gather.attrib == {"input": "dtmf", "numDigits": "1", "finishOnKey": "", "timeout": "1", "action": action}
    assert record.attrib == {"action": action, "timeout": "2", "maxLength": "60", "playBeep": "false",
                             "trim": "trim-silence", "finishOnKey": "0123456789*#"}
    assert (redirect.text, redirect.attrib) == (action, {"method": "POST"})
    plays = list(gather)
    assert [p.tag for p in plays] in ([], ["Play"])
    return plays[0].text if plays else None


async def prompt_seconds(peer: TwilioPeer, url: str) -> float:
    """Fetch a prompt as Twilio's player does: 8 kHz μ-law WAV; its length."""
    resp = await peer.get(url)
    assert resp.status == 200 and resp.content_type == "audio/wav"
    body = await resp.read()
    assert int.from_bytes(body[20:22], "little") == WAVE_FORMAT_MULAW
    pcm = decode_audio(body)
    assert pcm.rate == 8000
    return pcm.duration_s


def bot_saw(requests: list[dict[str, Any]], sid: str) -> list[str]:
    return [r["message"].get("val") for r in requests if r["from"]["id"] == user_id(sid)]


# --- the demo bank: a whole call ------------------------------------------------------------------------


@module_loop
async def test_the_welcome_plays_our_audio_then_listens_for_a_key_or_speech(bank):
    sid = new_call_sid()
    resp = await bank.post("/twilio/voice", call_params(sid))
    text = await resp.text()
    welcome = await twiml(resp)
    play = listens_for_speech(welcome, PUBLIC, 1)
    assert play.startswith(f"{PUBLIC}/twilio/audio/") and play.endswith("/0.wav")
    assert 6 < await prompt_seconds(bank, play) < 20  # the welcome and its three-option menu
    conversation = bank.client.app[CALLS].get(user_id(sid))
    assert conversation.call == CallInfo(user_id(sid), CALLER, CALLED, "twilio")
    retried = await bank.post("/twilio/voice", call_params(sid))
    assert await retried.text() == text  # the same answer, and no second conversation
    assert bank.client.app[CALLS].get(user_id(sid)) is conversation and call_of(bank, sid).answers == 1


async def test_with_twilio_speech_the_caller_is_heard_by_twilios_gather():
    async with running(twilio_settings(KORE_VOICE_TWILIO_SPEECH="gather")) as client:
        peer, sid = TwilioPeer(client), new_call_sid()
        [gather] = await start(peer, sid)
        assert gather.tag == "Gather" and gather.get("input") == "dtmf speech"
        assert gather.get("speechTimeout") == "auto" and gather.get("actionOnEmptyResult") == "true"
        assert gather.get("hints")  # the welcome menu's labels
        heard = await peer.post(gather.get("action"), call_params(sid, SpeechResult="check my balance",
                                                                   Confidence="0.87"))
        [again] = await twiml(heard)
        assert again.tag == "Gather" and again.get("action").endswith("/twilio/gather?t=2")
        state = call_of(peer, sid).conversation.state
        assert "2,450.18" in state.last_prompt


async def test_input_over_the_turn_limit_is_dropped_and_the_caller_heard_again(stub_requests):
    async with stub_kore(stub_requests) as url:
        settings = stub_settings(url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=TOKEN,
                                 KORE_VOICE_TURNS_PER_MINUTE="1")
        async with running(settings) as client:
            peer, sid = TwilioPeer(client), new_call_sid()
            await start(peer, sid)
            first = await peer.post(f"{peer.base}/twilio/gather?t=1", call_params(sid, Digits="3"))
            listens_for_speech(await twiml(first), peer.base, 2)
            flood = await peer.post(f"{peer.base}/twilio/gather?t=2", call_params(sid, Digits="4"))
            assert listens_for_speech(await twiml(flood), peer.base, 3) is None  # no prompt: listening again
            assert bot_saw(stub_requests, sid) == ["ON_CONNECT", "3"]
            assert not call_of(peer, sid).ended


@module_loop
async def test_a_whole_call_speech_then_keys_then_goodbye(bank, recordings, recorded):
    sid = new_call_sid()
    await start(bank, sid)
    url, served = recordings.add(recorded("transfer money"))
    resp = await bank.post(f"{PUBLIC}/twilio/recording?t=1",
                           call_params(sid, RecordingUrl=url, RecordingDuration="1", RecordingSid="RE1"))
    [gather] = await twiml(resp)  # the account number: keys only, as the bot asked
    assert gather.attrib == {"input": "dtmf", "numDigits": "8", "finishOnKey": "#", "timeout": "5",
                             "action": f"{PUBLIC}/twilio/gather?t=2", "actionOnEmptyResult": "true"}
    [play] = gather
    assert 3 < await prompt_seconds(bank, play.text) < 10
    assert served.requests == 1  # with the account's basic auth (else 401)
    conversation = call_of(bank, sid).conversation
    assert "8 digit account number" in conversation.state.last_prompt

    amount = await twiml(await bank.post(gather.get("action"), call_params(sid, Digits="12345678")))
    listens_for_speech(amount, PUBLIC, 3)  # "say the amount or enter it"
    [rest] = await twiml(await bank.post(f"{PUBLIC}/twilio/recording?t=3", call_params(sid, Digits="2")))
    assert rest.tag == "Gather" and list(rest) == []  # the first key cut the prompt: gather the rest, silently
    assert rest.attrib == {"input": "dtmf", "numDigits": "5", "finishOnKey": "#", "timeout": "3",
                           "action": f"{PUBLIC}/twilio/gather?t=4&keys=2", "actionOnEmptyResult": "true"}
    done = await twiml(await bank.post(rest.get("action"), call_params(sid, Digits="50")))
    listens_for_speech(done, PUBLIC, 5)
    assert conversation.state.last_prompt.startswith("Done. I sent 250 dollars to account 1 2 3 4 5 6 7 8.")

    bye = await bank.post(f"{PUBLIC}/twilio/gather?t=5", call_params(sid, SpeechResult="goodbye", Confidence="0.92"))
    root = await twiml(bye)
    expected = VoiceResponse()
    expected.play(root[0].text)
    expected.hangup()
    assert await bye.text() == str(expected)
    assert 2 < await prompt_seconds(bank, root[0].text) < 6  # served after the call has ended, too
    assert conversation.closed and conversation.state.closed_reason == "bot hung up"


@module_loop
async def test_a_menu_key_during_the_welcome_transfers_then_the_call_is_gone(bank):
    sid = new_call_sid()
    await start(bank, sid)
    moved = await bank.post(f"{PUBLIC}/twilio/recording?t=1", call_params(sid, Digits="3"))
    root = await twiml(moved)
    expected = VoiceResponse()
    expected.play(root[0].text)
    target = Dial()
    target.sip("sip:agent@demo-bank.example")
    expected.append(target)
    assert await moved.text() == str(expected)
    late = await bank.post(f"{PUBLIC}/twilio/gather?t=2", call_params(sid, Digits="1"))
    assert await late.text() == GONE
    retried = await bank.post(f"{PUBLIC}/twilio/recording?t=1", call_params(sid, Digits="3"))
    assert await retried.text() == str(expected)  # a retry still gets its answer


@module_loop
async def test_a_recording_not_stored_yet_is_fetched_again(bank, recordings, recorded):
    sid = new_call_sid()
    await start(bank, sid)
    url, served = recordings.add(recorded("check balance"), missing_first=1)
    resp = await bank.post(f"{PUBLIC}/twilio/recording?t=1", call_params(sid, RecordingUrl=url))
    listens_for_speech(await twiml(resp), PUBLIC, 2)
    assert served.requests == 2
    assert "2,450.18" in call_of(bank, sid).conversation.state.last_prompt


@module_loop
@pytest.mark.parametrize("silence", ["the recording is silent", "RecordingDuration=0", "RecordingStatus=absent"])
async def test_a_recording_that_says_nothing_is_no_input_not_a_miss(stub, recordings, media, silence):
    """Twilio saves silent recordings: the caller is asked again as after any silence, not told "Sorry,
    I didn't catch that." and counted against KORE_VOICE_MAX_NO_MATCH."""
    sid = new_call_sid()
    welcome = await start(stub, sid)
    quiet = media / "twilio-quiet-line.wav"
    run("sox", "-n", "-r", "8000", "-b", "16", "-c", "1", quiet, "synth", "3", "whitenoise", "vol", "0.002")
    url, served = recordings.add(quiet.read_bytes())
    told = {"the recording is silent": {"RecordingDuration": "3"}, "RecordingDuration=0": {"RecordingDuration": "0"},
            "RecordingStatus=absent": {"RecordingStatus": "absent", "RecordingDuration": "2"}}[silence]
    resp = await stub.post("/twilio/recording?t=1", call_params(sid, RecordingUrl=url, **told))
    play = listens_for_speech(await twiml(resp), stub.base, 2)
    state = call_of(stub, sid).conversation.state
    assert (state.no_input, state.no_match, state.phase) == (1, 0, "listening")
    assert served.requests == (1 if silence == "the recording is silent" else 0)
    welcome_s = await prompt_seconds(stub, listens_for_speech(welcome, stub.base, 1))
    assert await prompt_seconds(stub, play) == pytest.approx(welcome_s, abs=0.05)  # the welcome again


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def no_account():
    """The demo bank with only TWILIO_AUTH_TOKEN set (TWILIO_ACCOUNT_SID is optional), on a manual clock."""
    clock = ManualClock()
    async with running(door_settings(TWILIO_AUTH_TOKEN=TOKEN), clock=clock) as client:
        yield TwilioPeer(client), clock


@module_loop
async def test_without_the_account_setting_recordings_are_fetched_as_the_webhooks_account(no_account, recordings,
                                                                                          recorded):
    peer, _ = no_account
    sid = new_call_sid()
    await start(peer, sid)
    url, served = recordings.add(recorded("check balance"))  # the host wants ACCOUNT_SID:TOKEN
    resp = await peer.post("/twilio/recording?t=1", call_params(sid, RecordingUrl=url, AccountSid=ACCOUNT_SID))
    listens_for_speech(await twiml(resp), peer.base, 2)
    assert served.requests == 1
    assert "2,450.18" in call_of(peer, sid).conversation.state.last_prompt


@module_loop
async def test_a_recording_never_stored_is_waited_for_ten_seconds_then_no_input(no_account, recordings):
    peer, clock = no_account
    sid = new_call_sid()
    await start(peer, sid)
    url, served = recordings.add(b"", missing_first=1000)  # a silent recording Twilio did not keep (16102)
    began = clock.now()
    resp = await on_clock(clock, peer.post("/twilio/recording?t=1", call_params(sid, RecordingUrl=url)),
                          horizon_s=11)
    listens_for_speech(await twiml(resp), peer.base, 2)
    assert clock.now() - began == pytest.approx(10.0) and served.requests == 9
    state = call_of(peer, sid).conversation.state
    assert (state.no_input, state.no_match, state.phase) == (1, 0, "listening")


# --- the stub bot: endings, no input, retries, failures -------------------------------------------------


@module_loop
async def test_no_input_reprompts_then_says_goodbye(stub):
    sid = new_call_sid()
    welcome = await start(stub, sid)
    redirect = welcome[2].text  # what Twilio requests after an empty recording
    again = await twiml(await stub.post(redirect, call_params(sid)))
    play = listens_for_speech(again, stub.base, 2)
    assert call_of(stub, sid).conversation.state.no_input == 1
    welcome_s = await prompt_seconds(stub, listens_for_speech(welcome, stub.base, 1))
    assert await prompt_seconds(stub, play) == pytest.approx(welcome_s, abs=0.05)  # the welcome again
    bye = await twiml(await stub.post(f"{stub.base}/twilio/gather?t=2", call_params(sid)))
    assert [e.tag for e in bye] == ["Play", "Hangup"]
    assert call_of(stub, sid).conversation.state.closed_reason == "no input"


@module_loop
async def test_a_bot_failure_is_an_apology(stub, stub_requests):
    sid = new_call_sid()
    await start(stub, sid)
    failed = await twiml(await stub.post("/twilio/gather?t=1", call_params(sid, Digits="1")))  # the stub's 400
    play = listens_for_speech(failed, stub.base, 2)
    assert 2 < await prompt_seconds(stub, play) < 6  # "Sorry, something went wrong on our side. ..."
    assert not call_of(stub, sid).ended and bot_saw(stub_requests, sid) == ["ON_CONNECT", "1"]
    down = new_call_sid()
    refused = await stub.post("/twilio/voice", {**call_params(down), "From": "+1401"})  # no welcome at all
    play, hangup = await twiml(refused)
    assert (play.tag, hangup.tag) == ("Play", "Hangup") and 4 < await prompt_seconds(stub, play.text) < 10
    assert call_of(stub, down).conversation.state.closed_reason == "bot unavailable"


@module_loop
async def test_status_callbacks_end_the_call_once(stub, stub_requests):
    sid = new_call_sid()
    await start(stub, sid)
    ringing = await stub.post("/twilio/status", call_params(sid, CallStatus="ringing"))
    assert ringing.status == 204 and not call_of(stub, sid).ended
    params = call_params(sid, CallStatus="completed", CallDuration="12")
    ends = await asyncio.gather(*(stub.post("/twilio/status", params) for _ in range(2)))
    ends.append(await stub.post("/twilio/status", params))
    assert [(r.status, await r.read()) for r in ends] == [(204, b"")] * 3
    assert bot_saw(stub_requests, sid).count("SESSION_CLOSURE") == 1
    assert call_of(stub, sid).conversation.state.closed_reason == "caller hung up"
    unknown = await stub.post("/twilio/status", call_params(new_call_sid(), CallStatus="completed"))
    assert unknown.status == 204
    late = await stub.post(f"{stub.base}/twilio/gather?t=1", call_params(sid, Digits="5"))
    assert await late.text() == GONE


@module_loop
async def test_a_caller_hanging_up_while_recorded_ends_the_call(stub, stub_requests):
    sid = new_call_sid()
    await start(stub, sid)
    resp = await stub.post("/twilio/recording?t=1", call_params(sid, Digits="hangup", RecordingUrl="http://x/y"))
    assert [e.tag for e in await twiml(resp)] == ["Hangup"]
    assert bot_saw(stub_requests, sid) == ["ON_CONNECT", "SESSION_CLOSURE"]


@module_loop
async def test_a_retried_webhook_reaches_the_bot_once(stub, stub_requests):
    sid = new_call_sid()
    await start(stub, sid)
    target, params = "/twilio/gather?t=1", call_params(sid, Digits="42")
    first, second = await asyncio.gather(stub.post(target, params), stub.post(target, params))
    late = await stub.post(target, params)
    texts = {await r.text() for r in (first, second, late)}
    assert len(texts) == 1 and first.status == 200
    assert bot_saw(stub_requests, sid) == ["ON_CONNECT", "42"]
    assert call_of(stub, sid).answers == 2


@module_loop
async def test_follow_ups_for_unknown_calls_are_told_and_hung_up(stub):
    sid = new_call_sid()
    for target in ("/twilio/gather", "/twilio/recording?t=3", "/twilio/gather?t=1"):
        resp = await stub.post(target, call_params(sid, Digits="1"))
        assert (resp.status, await resp.text()) == (200, GONE)
    assert call_of(stub, sid) is None


@module_loop
@pytest.mark.parametrize(("how", "status", "reason"), [
    ("server_error", 500, "HTTP 500"), ("not_audio", 200, "WAV"), ("unreachable", 0, "connect"),
])
async def test_a_recording_we_cannot_use_is_an_apology_and_the_call_goes_on(stub, recordings, caplog, how, status,
                                                                            reason):
    sid = new_call_sid()
    await start(stub, sid)
    if how == "unreachable":
        url = "http://127.0.0.1:9/2010-04-01/Recordings/RE0"  # discard port: nothing listens
    else:
        url, _ = recordings.add(b"RIFF....WAVEjunk" if how == "not_audio" else b"", status=status)
    with caplog.at_level(logging.WARNING, logger="adapter.doors.twilio.voice"):
        resp = await stub.post("/twilio/recording?t=1", call_params(sid, RecordingUrl=url))
    listens_for_speech(await twiml(resp), stub.base, 2)
    state = call_of(stub, sid).conversation.state
    assert (state.no_match, state.phase) == (1, "listening")
    [record] = [r for r in caplog.records if "cannot use the recording" in r.getMessage()]
    assert reason.lower() in record.getMessage().lower() and TOKEN not in caplog.text


@module_loop
@pytest.mark.parametrize("target", ["/twilio/voice", "/twilio/gather?t=1", "/twilio/recording?t=1", "/twilio/status"])
@pytest.mark.parametrize("forgery", ["missing", "wrong token", "wrong url", "tampered"])
async def test_a_bad_signature_is_403_and_touches_nothing(stub, stub_requests, target, forgery):
    sid = new_call_sid()
    if target != "/twilio/voice":
        await start(stub, sid)
    before = bot_saw(stub_requests, sid)
    params = call_params(sid, Digits="7", CallStatus="completed")
    sent = dict(params)
    url = stub.url(target)
    signature = {"missing": "", "wrong token": stub.sign(url, params, token="not-the-token-0123456789"),
                 "wrong url": stub.sign("https://evil.example" + target, params),
                 "tampered": stub.sign(url, params)}[forgery]
    if forgery == "tampered":
        sent["Digits"] = "9"
    resp = await stub.post(target, sent, signature=signature)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "bad_signature"
    assert bot_saw(stub_requests, sid) == before
    call = call_of(stub, sid)
    assert call is None if target == "/twilio/voice" else (call.answers, call.ended) == (1, False)


@module_loop
@pytest.mark.parametrize(("target", "params"), [
    ("/twilio/voice", {"CallSid": "CA123"}),
    ("/twilio/status", {"CallSid": "", "CallStatus": "completed"}),
    ("/twilio/gather?t=1", {"Digits": "12a"}),
    ("/twilio/gather?t=one", {"Digits": "1"}),
    ("/twilio/gather?t=9", {"Digits": "1"}),
    ("/twilio/gather?t=1&keys=x", {"Digits": "1"}),
    ("/twilio/gather?t=1", {"SpeechResult": "yes", "Confidence": "high"}),
    ("/twilio/recording?t=1", {"RecordingUrl": "ftp://example.com/r.wav"}),
    ("/twilio/recording?t=1", {"Digits": "12"}),
])
async def test_malformed_parameters_are_400(stub, target, params):
    sid = new_call_sid()
    await start(stub, sid)
    resp = await stub.post(target, {**call_params(sid), **params})
    body = await resp.text()
    assert resp.status == 400 and "\n" not in body.strip(), body
    assert (await resp.json())["error"]["code"] == "bad_request"
    assert (call_of(stub, sid).answers, call_of(stub, sid).ended) == (1, False)


@module_loop
async def test_prompt_audio_needs_its_token(stub):
    sid = new_call_sid()
    play = listens_for_speech(await start(stub, sid), stub.base, 1)
    token = play.split("/")[-2]
    for path in (f"/twilio/audio/{'x' * 32}/0.wav", f"/twilio/audio/{token}/9.wav"):
        resp = await stub.client.get(path)
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "unknown_audio"
    assert (await stub.client.get(f"/twilio/audio/{user_id(sid)}/0.wav")).status == 404  # a call id is no token
