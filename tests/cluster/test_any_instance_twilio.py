"""Twilio TwiML calls on any instance: two services on one real redis-server behind one public URL, each
of a call's webhooks (voice, first key, gather, recording, status) landing on the instance the test picks
as a round-robin balancer would, signed as Twilio signs them; prompts fetched by Twilio's player from the
other instance; the caller's recording fetched from a local fake of Twilio's recordings API; the real
Kore.ai client and simulator, espeak-ng and PocketSphinx."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from aiohttp import ClientResponse
from doors.conftest import run, running
from doors.twilio.conftest import ACCOUNT_SID, TOKEN, TwilioPeer, call_params, new_call_sid, recording_host

from adapter.audio.decode import decode_audio
from adapter.doors.twilio.call_sid import user_id
from cluster.conftest import cluster_settings
from cluster.test_any_instance import on_connects

PUBLIC = "https://voice.example.com"  # both instances, behind one balancer


def twilio_cluster_settings(redis_db, bot):
    return cluster_settings(redis_db, bot, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=TOKEN,
                            KORE_VOICE_PUBLIC_URL=PUBLIC)


async def twiml(resp: ClientResponse) -> ET.Element:
    text = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/xml", text
    return ET.fromstring(text)


async def prompt_seconds(peer: TwilioPeer, url: str) -> float:
    resp = await peer.get(url)
    assert resp.status == 200 and resp.content_type == "audio/wav", await resp.text()
    return decode_audio(await resp.read()).duration_s


def play_url(root: ET.Element) -> str:
    """The prompt of a listening answer (nested in its first `<Gather>`)."""
    [play] = root[0]
    assert play.tag == "Play" and play.text.startswith(f"{PUBLIC}/twilio/audio/")
    return play.text


def recorded(folder: Path, text: str) -> bytes:
    """espeak-ng saying `text`, as Twilio records a caller: an 8 kHz 16-bit mono WAV."""
    said, out = folder / "said.wav", folder / "recorded.wav"
    run("espeak-ng", "-v", "en-us+f2", "-s", "150", "-w", said, text)
    run("sox", said, "-r", "8000", "-b", "16", "-c", "1", out)
    return out.read_bytes()


async def test_a_twiml_calls_webhooks_alternate_between_instances(redis_db, peek, bot, tmp_path):
    async with (running(twilio_cluster_settings(redis_db, bot)) as a, running(twilio_cluster_settings(redis_db, bot))
                as b, recording_host() as recordings):
        one, two = TwilioPeer(a, PUBLIC), TwilioPeer(b, PUBLIC)
        sid = new_call_sid()
        call = user_id(sid)

        welcome = await twiml(await one.post("/twilio/voice", call_params(sid)))
        assert welcome[1].get("action") == f"{PUBLIC}/twilio/recording?t=1"
        made_here = await prompt_seconds(one, play_url(welcome))
        assert abs(await prompt_seconds(two, play_url(welcome)) - made_here) < 0.05  # re-rendered there
        retried = await two.post("/twilio/voice", call_params(sid))  # Twilio retried it, on the other
        assert ET.tostring(await twiml(retried)) == ET.tostring(welcome)
        assert on_connects(bot, call) == 1

        # the caller says "transfer money" (a recording fetched from Twilio's API, on the other instance):
        # the bot asks for the account number, keys only
        url, served = recordings.add(recorded(tmp_path, "transfer money"))
        heard = await two.post(f"{PUBLIC}/twilio/recording?t=1",
                               call_params(sid, RecordingUrl=url, RecordingDuration="1"))
        [account] = await twiml(heard)
        assert served.requests == 1
        assert account.get("action") == f"{PUBLIC}/twilio/gather?t=2" and account.get("numDigits") == "8"
        [play] = account
        assert 2 < await prompt_seconds(one, play.text) < 10

        amount = await twiml(await one.post(account.get("action"), call_params(sid, Digits="12345678")))
        assert amount[1].get("action") == f"{PUBLIC}/twilio/recording?t=3"  # "say the amount or enter it"
        again = await two.post(account.get("action"), call_params(sid, Digits="12345678"))  # a retry, elsewhere
        assert ET.tostring(await twiml(again)) == ET.tostring(amount)

        # a first key cuts the prompt; the rest of the entry is gathered, each on the other instance
        [rest] = await twiml(await two.post(f"{PUBLIC}/twilio/recording?t=3", call_params(sid, Digits="5")))
        assert rest.get("action") == f"{PUBLIC}/twilio/gather?t=4&keys=5"
        sent = await twiml(await one.post(rest.get("action"), call_params(sid, Digits="0")))
        assert sent[1].get("action") == f"{PUBLIC}/twilio/recording?t=5"
        assert 4 < await prompt_seconds(two, play_url(sent)) < 15  # "Done. I sent 50 dollars ..."
        assert bot.texts_from(call) == ["transfer", "12345678", "50"]
        assert on_connects(bot, call) == 1  # one bot session all along

        ended = await two.post("/twilio/status", call_params(sid, CallStatus="completed", CallDuration="40"))
        assert ended.status == 204
        assert bot.closures(call) == 1
        assert await peek.exists(f"kv:call:{call}") == 0
        assert (await one.post("/twilio/status", call_params(sid, CallStatus="completed"))).status == 204
        late = await twiml(await one.post(f"{PUBLIC}/twilio/recording?t=5", call_params(sid, Digits="1")))
        assert [e.tag for e in late] == ["Say", "Hangup"]  # the call is gone, on either instance
        assert bot.closures(call) == 1 and bot.texts_from(call)[-1] == "50"
