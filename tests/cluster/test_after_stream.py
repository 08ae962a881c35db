"""Twilio media streams on two instances of one real redis-server, behind one public URL: the voice webhook
lands on one, the stream on the other, and Twilio's `<Connect action>` request (`/twilio/after-stream`)
on either gets what the call's end left (a `<Dial>` after the bot's transfer), once."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from doors.conftest import running
from doors.twilio.conftest import ACCOUNT_SID, TOKEN, TwilioPeer, call_params, new_call_sid

from adapter.doors.twilio.media import PATH
from adapter.doors.twilio.twiml import hang_up, transfer
from adapter.testing.twilio_media import MediaPeer
from cluster.conftest import cluster_settings

PUBLIC = "https://voice.example.com"  # the balancer's address, which Twilio signs over


async def test_after_stream_twiml_is_answered_once_by_whichever_instance_twilio_asks(redis_db, bot):
    settings = cluster_settings(redis_db, bot, KORE_VOICE_TWILIO_MODE="media-streams", KORE_VOICE_PUBLIC_URL=PUBLIC,
                                TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=TOKEN)
    async with running(settings) as one, running(settings) as two:
        sid = new_call_sid()
        voice = await TwilioPeer(one, PUBLIC).post("/twilio/voice", call_params(sid))
        assert voice.status == 200, await voice.text()
        stream = ET.fromstring(await voice.text()).find("./Connect/Stream")
        assert stream is not None
        parameters = {p.get("name"): p.get("value") for p in stream.iter("Parameter")}
        url = "ws" + str(two.make_url(PATH)).removeprefix("http")
        async with MediaPeer(two.session, url, sid, parameters) as peer:  # type: ignore[arg-type]
            await peer.until(lambda p: p.frames > 10, 30)
            await peer.dtmf("3")  # the welcome menu's "Talk to an agent": the bot transfers
            await peer.until(lambda p: p.closed, 30)
        assert peer.close_code == 1000

        after = call_params(sid, CallStatus="in-progress")
        answer = await TwilioPeer(one, PUBLIC).post("/twilio/after-stream", after)
        assert (answer.status, await answer.text()) == (200, str(transfer("sip:agent@demo-bank.example")))
        again = await TwilioPeer(two, PUBLIC).post("/twilio/after-stream", after)
        assert (again.status, await again.text()) == (200, str(hang_up()))
