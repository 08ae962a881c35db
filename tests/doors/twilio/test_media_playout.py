"""Pacing Twilio's audio: frames on a monotonic schedule with a small lead, marks after prompts, `clear`.

The clock is moved by hand and `tick` called as the shared ticker would; one test runs the real ticker.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from adapter.doors.twilio.media_messages import FRAME_S
from adapter.doors.twilio.playout import LEAD_S, MAX_UNSENT_BYTES, Playout, Ticker

SID = "MZ" + "1" * 32
LEAD = round(LEAD_S / FRAME_S)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Socket:
    """What the playout sends, as (time, event, payload or mark name)."""

    def __init__(self, clock: Clock | None = None, fail: bool = False) -> None:
        self.clock = clock
        self.fail = fail
        self.sent: list[tuple[float, str, Any]] = []
        self.marked = asyncio.Event()

    async def send_str(self, text: str) -> None:
        if self.fail:
            raise ConnectionResetError("gone")
        message = json.loads(text)
        assert message["streamSid"] == SID
        event = message["event"]
        detail = message.get("media", {}).get("payload") or message.get("mark", {}).get("name")
        self.sent.append((self.clock() if self.clock else 0.0, event, detail))
        if event == "mark":
            self.marked.set()

    def events(self) -> list[str]:
        return [event for _, event, _ in self.sent]

    def frames(self) -> int:
        return self.events().count("media")


def prompt(seconds: float, byte: int = 0x10) -> bytes:
    return bytes([byte]) * round(seconds * 8000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ws(clock) -> Socket:
    return Socket(clock)


@pytest.fixture
def playout(ws, clock) -> Playout:
    return Playout(ws, SID, Ticker(clock=clock))  # type: ignore[arg-type]


async def test_a_prompt_goes_out_in_real_time_with_a_small_lead_then_its_mark(playout, ws, clock):
    start = clock.now
    await playout.play(1, prompt(1.0))
    assert ws.frames() == 1 + LEAD  # the lead goes at once
    for step in range(1, 60):
        clock.now = start + step * FRAME_S
        await playout.tick(clock.now)
        # never behind real time, never more than the lead ahead of it
        assert min(50, step + 1) <= ws.frames() <= step + 1 + LEAD
    assert ws.events() == ["media"] * 50 + ["mark"]
    assert ws.sent[-1][2] == "prompt-1" and ws.sent[-1][0] == ws.sent[-2][0]  # right after the last frame
    assert not await playout.tick(clock.now)


async def test_a_late_tick_sends_what_it_missed_and_no_more(playout, ws, clock):
    start = clock.now
    await playout.play(1, prompt(1.0))
    clock.now = start + 0.1  # 80 ms late
    await playout.tick(clock.now)
    assert ws.frames() == 5 + 1 + LEAD
    clock.now = start + 0.12
    await playout.tick(clock.now)
    assert ws.frames() == 6 + 1 + LEAD


async def test_back_to_back_prompts_keep_one_schedule_and_a_new_run_starts_afresh(playout, ws, clock):
    start = clock.now
    await playout.play(1, prompt(0.2))
    await playout.play(2, prompt(0.2))
    for step in range(1, 25):
        clock.now = start + step * FRAME_S
        await playout.tick(clock.now)
        assert ws.frames() <= step + 1 + LEAD
    assert ws.events() == ["media"] * 10 + ["mark"] + ["media"] * 10 + ["mark"]
    clock.now = start + 5.0  # Twilio's buffer ran dry long ago: the next prompt does not "catch up"
    await playout.play(3, prompt(1.0))
    assert ws.frames() == 20 + 1 + LEAD


async def test_a_schedule_starts_on_the_tickers_phase_so_a_late_tick_never_skips_a_frame(clock):
    ticker = Ticker(clock=clock)
    assert ticker.phase(clock.now + 0.013) == clock.now + 0.013  # idle: its ticks start after now
    running = asyncio.create_task(ticker.run())
    try:
        await Playout(Socket(clock), SID, ticker).play(1, prompt(10.0))  # type: ignore[arg-type]
        await asyncio.sleep(0)  # the ticker's first tick, now: its phase
        start = clock.now
        assert ticker.phase(start + 0.013) == start and ticker.phase(start + 0.047) == pytest.approx(start + 0.04)
        ws = Socket(clock)
        playout = Playout(ws, SID, ticker)  # type: ignore[arg-type]
        clock.now = start + 0.013
        await playout.play(2, prompt(1.0))
        for k in range(1, 20):
            clock.now = start + k * FRAME_S + (0.019 if k % 2 else 0.0005)  # ticks late by 0.5 to 19 ms
            await playout.tick(clock.now)
            assert ws.frames() == k + 1 + LEAD  # one frame a tick, whatever the lateness
    finally:
        running.cancel()


async def test_the_last_frame_is_padded_to_20_ms(playout, ws):
    await playout.play(1, prompt(0.03))
    assert [len(p) for _, e, p in ws.sent if e == "media"] == [216, 216]  # 2 x 160 bytes, base64


async def test_an_echoed_mark_names_its_prompt_once(playout, ws):
    await playout.play(4, prompt(0.02))
    assert ws.events() == ["media", "mark"]
    assert not await playout.wait_played(0)
    assert playout.echoed("greeting") is None
    assert playout.echoed("prompt-4") == 4
    assert playout.echoed("prompt-4") is None
    assert await playout.wait_played(0)


async def test_clear_drops_queued_audio_and_the_marks_twilio_echoes_for_it(playout, ws, clock):
    await playout.play(1, prompt(0.04))  # sent whole, mark included, within the lead
    await playout.play(2, prompt(2.0))
    assert ws.events()[:3] == ["media", "media", "mark"]
    await playout.clear()
    assert ws.events()[-1] == "clear"
    assert playout.queued_s == 0.0 and await playout.wait_played(0)
    sent = len(ws.sent)
    clock.now += 1.0
    assert not await playout.tick(clock.now)
    assert len(ws.sent) == sent
    # Twilio echoes the marks of the audio it dropped: none of them is a prompt that played.
    assert playout.echoed("prompt-1") is None
    assert playout.echoed("prompt-2") is None


async def test_a_closed_socket_ends_the_playout(clock):
    ws = Socket(clock, fail=True)
    playout = Playout(ws, SID, Ticker(clock=clock))  # type: ignore[arg-type]
    await playout.play(1, prompt(1.0))
    assert not await playout.tick(clock.now + 0.5)
    assert await playout.wait_played(0)
    playout.close()
    await playout.play(2, prompt(1.0))
    assert not await playout.tick(clock.now + 1.0)


class Backlog(asyncio.WriteTransport):
    def __init__(self, unsent: int) -> None:
        super().__init__()
        self.unsent = unsent

    def get_write_buffer_size(self) -> int:
        return self.unsent


async def test_a_peer_that_does_not_read_is_skipped_not_waited_for(ws, clock):
    backlog = Backlog(MAX_UNSENT_BYTES + 1)
    playout = Playout(ws, SID, Ticker(clock=clock), backlog)  # type: ignore[arg-type]
    await playout.play(1, prompt(1.0))
    assert ws.sent == []
    backlog.unsent = 0
    clock.now += 3.0
    assert await playout.tick(clock.now)
    assert ws.frames() == 1 + LEAD  # a fresh run: no burst for the time it was stuck


async def test_the_shared_ticker_paces_every_playout_to_the_end():
    ticker = Ticker()
    sockets = [Socket(), Socket()]
    playouts = [Playout(ws, SID, ticker) for ws in sockets]  # type: ignore[arg-type]
    running = asyncio.create_task(ticker.run())
    try:
        await playouts[0].play(1, prompt(0.2))
        await playouts[1].play(1, prompt(0.3))
        await asyncio.wait_for(asyncio.gather(*(ws.marked.wait() for ws in sockets)), 5)
    finally:
        running.cancel()
    assert sockets[0].events() == ["media"] * 10 + ["mark"]
    assert sockets[1].events() == ["media"] * 15 + ["mark"]
    assert [p.echoed("prompt-1") for p in playouts] == [1, 1]


class BrokenSocket(Socket):
    """A socket whose sends fail in a way nobody planned for, once the first frame is out."""

    async def send_str(self, text: str) -> None:
        if self.sent:
            raise RuntimeError("a bug in the socket")
        await super().send_str(text)


async def test_one_broken_stream_does_not_stop_the_shared_ticker():
    ticker = Ticker()
    broken, good = BrokenSocket(), Socket()
    running = asyncio.create_task(ticker.run())
    try:
        await Playout(broken, SID, ticker, lead_s=0.0).play(1, prompt(0.2))  # type: ignore[arg-type]
        await Playout(good, SID, ticker).play(1, prompt(0.2))  # type: ignore[arg-type]
        await asyncio.wait_for(good.marked.wait(), 5)
        assert not running.done()
    finally:
        running.cancel()
    assert broken.events() == ["media"]
    assert good.events() == ["media"] * 10 + ["mark"]
