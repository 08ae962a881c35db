"""The SIP door against sipp 3.6, a real SIP/RTP peer: its built-in uac_pcap call (PCMA audio and an
RFC 4733 key), and scenarios of our own for CANCEL, a late ACK, OPTIONS and the caller's BYE."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.doors.sip.conftest import SCENARIOS, SIPP_PCAPS, sip_service, sipp


def pcap_folder(tmp_path: Path) -> Path:
    (tmp_path / "pcap").symlink_to(SIPP_PCAPS)
    return tmp_path


async def test_uac_pcap_call_passes_and_its_key_reaches_the_bot(tmp_path: Path) -> None:
    async with sip_service(KORE_VOICE_INTER_DIGIT_SECONDS="0.5") as sip:  # the key alone is the entry
        result = await sipp(sip.port, "-sn", "uac_pcap", "-mi", "127.0.0.1", cwd=pcap_folder(tmp_path))
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        for _ in range(100):  # the conversation closes the bot session once the BYE is in
            if any(r.get("message", {}).get("val") == "SESSION_CLOSURE" for r in sip.requests):
                break
            await asyncio.sleep(0.05)
        texts = [r.get("message", {}).get("val") for r in sip.requests]
        assert texts[0] == "ON_CONNECT" and texts.count("SESSION_CLOSURE") == 1
        assert "1" in texts, texts  # the RFC 4733 digit 1 of dtmf_2833_1.pcap


@pytest.mark.parametrize("scenario", ["cancel.xml", "late_ack.xml", "options.xml", "caller_bye.xml"])
async def test_own_scenarios_pass(scenario: str, tmp_path: Path) -> None:
    async with sip_service() as sip:
        result = await sipp(sip.port, "-sf", str(SCENARIOS / scenario), "-mi", "127.0.0.1", cwd=tmp_path)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        for _ in range(100):
            if not sip.agent.calls and all(
                    r.get("message", {}).get("val") != "ON_CONNECT" for r in sip.requests) or any(
                    r.get("message", {}).get("val") == "SESSION_CLOSURE" for r in sip.requests):
                break
            await asyncio.sleep(0.05)
        texts = [r.get("message", {}).get("val") for r in sip.requests]
        assert texts.count("ON_CONNECT") == texts.count("SESSION_CLOSURE") <= 1  # no Kore session left open
        assert not sip.agent.calls
