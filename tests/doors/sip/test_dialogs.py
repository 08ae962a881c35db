"""In-dialog requests and call identity against a raw SIP peer and the simulated bot: a whole call over
TCP, INFO `application/dtmf-relay` keys, REFER for the bot's transfer (accepted: ended by the peer's
NOTIFY; refused: BYE with the target logged), re-INVITE for hold, and caller/called from the headers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from adapter.doors.sip import sdp
from adapter.doors.sip.message import Request, Response, response
from tests.doors.sip.conftest import (
    SipService,
    UdpPeer,
    request,
    sdp_offer,
    sip_service,
    tcp_peer,
    udp_peer,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the module's simulated bot serves on that loop

AGENT = "sip:agent@example.com"
BOT = {
    "name": "SIP line",
    "welcome": [{"say": "Hi."}],
    "fallback": [{"say": "Sorry?"}],
    "intents": {
        "agent": {"regex": ["^0$"], "steps": [{"voice": {"text": "Hold on.", "action": "transfer", "to": AGENT}}]},
        "five": {"regex": ["^5$"], "steps": [{"say": "Five."}]},
    },
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sip(bot) -> AsyncIterator[SipService]:
    async with sip_service(bot=bot) as service:
        yield service


def user_of_call(sip: SipService, call_id: str) -> str:
    [call] = [c for c in sip.agent.calls.values() if c.dialog.call_id == call_id]
    return call.conversation.call.user_id


async def answered(sip: SipService, peer: UdpPeer, call_id: str, **invite: str) -> Response:
    """An INVITE from `peer` answered 200 and ACKed; the 200 OK."""
    peer.send(request("INVITE", peer.port, sdp_offer(), call_id=call_id, branch=f"z9hG4bK-{call_id}", **invite),
              sip.port)
    ok = await peer.final()
    assert ok.status == 200, ok
    peer.send(request("ACK", peer.port, call_id=call_id, branch=f"z9hG4bK-ack-{call_id}", to_tag=tag(ok)), sip.port)
    return ok


def tag(message: Response | Request) -> str:
    return (message.get("To") or "").split("tag=")[1]


def info(peer: UdpPeer, ok: Response, key: str, cseq: int) -> bytes:
    return request("INFO", peer.port, f"Signal={key}\r\nDuration=160\r\n", call_id=ok.call_id,
                   branch=f"z9hG4bK-info-{ok.call_id}-{cseq}", to_tag=tag(ok), cseq=cseq,
                   content_type="application/dtmf-relay")


async def press(sip: SipService, peer: UdpPeer, ok: Response, keys: str) -> None:
    for cseq, key in enumerate(keys, 2):
        peer.send(info(peer, ok, key, cseq), sip.port)
        assert (await peer.final()).status == 200


async def test_a_whole_call_over_tcp(sip, bot):
    async with tcp_peer(sip.port) as peer:
        peer.send(request("INVITE", peer.port, sdp_offer(), call_id="tcp-call", transport="TCP"))
        ok = await peer.final()
        assert ok.status == 200 and "transport=tcp" in (ok.get("Contact") or "")
        uid = user_of_call(sip, "tcp-call")
        peer.send(request("ACK", peer.port, call_id="tcp-call", branch="z9hG4bK-a", to_tag=tag(ok), transport="TCP"))
        peer.send(request("BYE", peer.port, call_id="tcp-call", branch="z9hG4bK-b", to_tag=tag(ok), cseq=2,
                          transport="TCP"))
        assert (await peer.final()).status == 200
    await until_closed(bot, uid)
    assert not sip.agent.calls


async def until_closed(bot, uid: str) -> None:
    """The call's Kore session closed, once (the conversation's hang-up runs after the BYE's 200)."""
    for _ in range(200):
        if bot.closures(uid):
            break
        await asyncio.sleep(0.05)
    assert bot.closures(uid) == 1


async def test_info_dtmf_relay_keys_reach_the_bot(sip, bot):
    async with udp_peer() as peer:
        ok = await answered(sip, peer, "info-call")
        uid = user_of_call(sip, "info-call")
        await press(sip, peer, ok, "5#")
        peer.send(request("INFO", peer.port, "hello", call_id="info-call", branch="z9hG4bK-text", to_tag=tag(ok),
                          cseq=9, content_type="text/plain"), sip.port)
        assert (await peer.final()).status == 415
        peer.send(request("BYE", peer.port, call_id="info-call", branch="z9hG4bK-bye", to_tag=tag(ok), cseq=10),
                  sip.port)
        assert (await peer.final()).status == 200
    await until_closed(bot, uid)
    assert bot.texts_from(uid) == ["5"]


async def test_the_bots_transfer_is_a_refer_and_the_peers_notify_ends_the_call(sip, bot):
    async with udp_peer() as peer:
        ok = await answered(sip, peer, "refer-ok")
        uid = user_of_call(sip, "refer-ok")
        await press(sip, peer, ok, "0#")
        refer = await peer.request()
        assert (refer.method, refer.get("Refer-To"), tag(refer)) == ("REFER", f"<{AGENT}>", "peer")
        peer.send(response(refer, 202).encode(), sip.port)
        notify = request("NOTIFY", peer.port, "SIP/2.0 200 OK\r\n", call_id="refer-ok", branch="z9hG4bK-n",
                         to_tag=tag(ok), cseq=5, content_type="message/sipfrag",
                         extra="Event: refer\r\nSubscription-State: terminated;reason=noresource\r\n")
        peer.send(notify, sip.port)
        assert (await peer.final()).status == 200
        bye = await peer.request()
        assert bye.method == "BYE"
        peer.send(response(bye, 200).encode(), sip.port)
    await until_closed(bot, uid)


async def test_a_refused_refer_hangs_up_with_the_target_logged(sip, bot, caplog):
    caplog.set_level(logging.WARNING, "adapter.doors.sip")
    async with udp_peer() as peer:
        ok = await answered(sip, peer, "refer-no")
        uid = user_of_call(sip, "refer-no")
        await press(sip, peer, ok, "0#")
        refer = await peer.request()
        assert refer.method == "REFER"
        peer.send(response(refer, 603).encode(), sip.port)
        bye = await peer.request()
        assert bye.method == "BYE"
        peer.send(response(bye, 200).encode(), sip.port)
    await until_closed(bot, uid)
    assert any("refused our REFER (603)" in r.message and AGENT in r.message for r in caplog.records)


async def test_a_reinvite_for_hold_and_back_is_answered_with_our_sdp(sip, bot):
    async with udp_peer() as peer:
        ok = await answered(sip, peer, "hold")
        first = sdp.parse_offer(ok.body)
        for cseq, direction in ((2, "sendonly"), (3, "sendrecv")):
            offer = sdp_offer(port=40002) + f"a={direction}\r\n"
            peer.send(request("INVITE", peer.port, offer, call_id="hold", branch=f"z9hG4bK-re{cseq}",
                              to_tag=tag(ok), cseq=cseq), sip.port)
            again = await peer.final()
            assert again.status == 200 and again.get("Content-Type") == "application/sdp"
            ours = sdp.parse_offer(again.body)
            assert (ours.port, ours.codec) == (first.port, first.codec)  # the same RTP port and codec
            assert ours.direction == {"sendonly": "recvonly", "sendrecv": "sendrecv"}[direction]
            peer.send(request("ACK", peer.port, call_id="hold", branch=f"z9hG4bK-ra{cseq}", to_tag=tag(ok),
                              cseq=cseq), sip.port)
        peer.send(request("BYE", peer.port, call_id="hold", branch="z9hG4bK-hb", to_tag=tag(ok), cseq=4), sip.port)
        assert (await peer.final()).status == 200


@pytest.mark.parametrize(("invite", "caller", "called"), [
    ({"extra": "P-Asserted-Identity: \"Alice\" <sip:+15550001111@carrier.example>\r\n"}, "+15550001111",
     "+15559870000"),
    ({}, "+15551230000", "+15559870000"),  # From, and the Request-URI's user
    ({"uri": "sip:127.0.0.1"}, "+15551230000", "bot"),  # no user in the Request-URI: To's
])
async def test_caller_and_called_come_from_the_headers(sip, bot, invite, caller, called):
    call_id = f"who-{caller}-{called}"
    async with udp_peer() as peer:
        ok = await answered(sip, peer, call_id, **invite)
        uid = user_of_call(sip, call_id)
        peer.send(request("BYE", peer.port, call_id=call_id, branch=f"z9hG4bK-bye-{call_id}", to_tag=tag(ok), cseq=2),
                  sip.port)
        assert (await peer.final()).status == 200
    first = bot.bodies(uid)[0]
    assert (first["customData"]["ani"], first["customData"]["dnis"]) == (caller, called)
    assert uid not in (caller, called)  # every call its own Kore from.id
