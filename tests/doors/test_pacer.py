"""The one pacer of every streaming door: raw 20 ms frames of the door's codec on a monotonic schedule
with a small lead, a marker (or a play-time report) after each prompt, `clear`, and the shared ticker.

The app's clock is a manual one moved by hand, `tick` called as the shared pacer would; two tests run
the real pacer on the system clock.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from conversation.manual_clock import ManualClock

from adapter.calls.clock import SystemClock
from adapter.doors.pacer import FRAME_S, LEAD_S, MAX_UNSENT_BYTES, SLIN_8K, SLIN_16K, ULAW_8K, PacedStream, Pacer

LEAD = round(LEAD_S / FRAME_S)


class Wire:
    """A door's transport: what the stream hands it, as (time, kind, frame or prompt id), and the prompts
    reported played."""

    def __init__(self, clock: Any = None, fail: bool = False) -> None:
        self.clock = clock
        self.fail = fail
        self.sent: list[tuple[float, str, Any]] = []
        self.played: list[int] = []
        self.marked = asyncio.Event()

    def _add(self, kind: str, detail: Any) -> None:
        if self.fail:
            raise ConnectionResetError("gone")
        self.sent.append((self.clock.now() if self.clock else 0.0, kind, detail))

    async def frame(self, frame: bytes) -> None:
        self._add("frame", frame)

    async def marker(self, prompt: int) -> None:
        self._add("marker", prompt)
        self.marked.set()

    async def clear(self) -> None:
        self._add("clear", None)

    def kinds(self) -> list[str]:
        return [kind for _, kind, _ in self.sent]

    def frames(self) -> int:
        return self.kinds().count("frame")


def echoing(pacer: Pacer, wire: Wire, **options: Any) -> PacedStream:
    """A stream whose peer echoes markers (Twilio's `mark`)."""
    return PacedStream(pacer, ULAW_8K, wire.frame, wire.played.append, send_marker=wire.marker,
                       send_clear=wire.clear, **options)


def prompt(seconds: float, byte: int = 0x10) -> bytes:
    return bytes([byte]) * round(seconds * 8000)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(100.0)


@pytest.fixture
def wire(clock) -> Wire:
    return Wire(clock)


@pytest.fixture
def stream(wire, clock) -> PacedStream:
    return echoing(Pacer(clock), wire)


async def tick_to(stream: PacedStream, clock: ManualClock, at: float) -> bool:
    clock.advance(at - clock.now())
    return await stream.tick(clock.now())


def test_frames_are_20_ms_of_the_doors_codec_the_last_padded_with_its_silence():
    audio = bytes(range(256)) + bytes(100)
    for fmt, size, silence in ((ULAW_8K, 160, b"\xff"), (SLIN_8K, 320, b"\x00"), (SLIN_16K, 640, b"\x00")):
        cut = fmt.frames(audio)
        assert {len(f) for f in cut} == {size}  # never a short frame (Asterisk hangs up on an empty one)
        assert b"".join(cut) == audio + silence * (-len(audio) % size)
        assert fmt.frames(b"") == []


async def test_a_prompt_goes_out_in_real_time_with_a_small_lead_then_its_marker(stream, wire, clock):
    start = clock.now()
    await stream.play(1, prompt(1.0))
    assert wire.frames() == 1 + LEAD  # the lead goes at once
    for step in range(1, 60):
        await tick_to(stream, clock, start + step * FRAME_S)
        # never behind real time, never more than the lead ahead of it
        assert min(50, step + 1) <= wire.frames() <= step + 1 + LEAD
    assert wire.kinds() == ["frame"] * 50 + ["marker"]
    assert wire.sent[-1][2] == 1 and wire.sent[-1][0] == wire.sent[-2][0]  # right after the last frame
    assert not await stream.tick(clock.now())
    assert wire.played == []  # played only once the peer echoes the marker


async def test_a_late_tick_sends_what_it_missed_and_no_more(stream, wire, clock):
    start = clock.now()
    await stream.play(1, prompt(1.0))
    await tick_to(stream, clock, start + 0.1)  # 80 ms late
    assert wire.frames() == 5 + 1 + LEAD
    await tick_to(stream, clock, start + 0.12)
    assert wire.frames() == 6 + 1 + LEAD


async def test_back_to_back_prompts_keep_one_schedule_and_a_new_run_starts_afresh(stream, wire, clock):
    start = clock.now()
    await stream.play(1, prompt(0.2))
    await stream.play(2, prompt(0.2))
    for step in range(1, 25):
        await tick_to(stream, clock, start + step * FRAME_S)
        assert wire.frames() <= step + 1 + LEAD
    assert wire.kinds() == ["frame"] * 10 + ["marker"] + ["frame"] * 10 + ["marker"]
    clock.advance(start + 5.0 - clock.now())  # the peer's buffer ran dry long ago: no "catching up"
    await stream.play(3, prompt(1.0))
    assert wire.frames() == 20 + 1 + LEAD


async def test_a_schedule_starts_on_the_pacers_phase_so_a_late_tick_never_skips_a_frame(clock):
    pacer = Pacer(clock)
    assert pacer.phase(clock.now() + 0.013) == clock.now() + 0.013  # idle: its ticks start after now
    running = asyncio.create_task(pacer.run())
    try:
        await echoing(pacer, Wire(clock)).play(1, prompt(10.0))
        await asyncio.sleep(0)  # the pacer's first tick, now: its phase
        start = clock.now()
        assert pacer.phase(start + 0.013) == start and pacer.phase(start + 0.047) == pytest.approx(start + 0.04)
        wire = Wire(clock)
        stream = echoing(pacer, wire)
        clock.t = start + 0.013  # between ticks, without firing the pacer's own
        await stream.play(2, prompt(1.0))
        for k in range(1, 20):
            clock.t = start + k * FRAME_S + (0.019 if k % 2 else 0.0005)  # ticks late by 0.5 to 19 ms
            await stream.tick(clock.now())
            assert wire.frames() == k + 1 + LEAD  # one frame a tick, whatever the lateness
    finally:
        running.cancel()


async def test_an_echoed_marker_reports_its_prompt_played_once(stream, wire, clock):
    await stream.play(4, prompt(0.02))
    assert wire.kinds() == ["frame", "marker"]
    assert not await stream.wait_played(0)
    stream.echoed(3)  # not a prompt of ours
    assert wire.played == []
    stream.echoed(4)
    stream.echoed(4)
    assert wire.played == [4]
    assert await stream.wait_played(0)


async def test_without_an_echo_a_prompt_is_reported_played_once_its_audio_has_played(clock):
    wire = Wire(clock)
    stream = PacedStream(Pacer(clock), SLIN_8K, wire.frame, wire.played.append)  # AudioSocket, RTP: no echo
    start = clock.now()
    await stream.play(1, bytes(320 * 10))  # 200 ms
    await stream.play(2, bytes(320 * 5))  # 100 ms more
    for step in range(1, 10):
        assert await tick_to(stream, clock, start + step * FRAME_S)
    assert wire.played == []  # the first prompt's last frame is still playing
    assert await tick_to(stream, clock, start + 0.2)
    assert wire.played == [1]
    assert await tick_to(stream, clock, start + 0.28)
    assert not await tick_to(stream, clock, start + 0.3)
    assert wire.played == [1, 2] and wire.kinds() == ["frame"] * 15  # no marker on the wire
    assert await stream.wait_played(0)


async def test_wait_played_times_out_on_the_apps_clock(stream, clock):
    await stream.play(1, prompt(0.02))  # its marker never comes back
    waiting = asyncio.create_task(stream.wait_played(3.0))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # real time passing changes nothing
    clock.advance(3.0)
    assert await waiting is False


async def test_clear_drops_queued_audio_and_the_markers_echoed_for_it(stream, wire, clock):
    await stream.play(1, prompt(0.04))  # sent whole, marker included, within the lead
    await stream.play(2, prompt(2.0))
    assert wire.kinds()[:3] == ["frame", "frame", "marker"]
    await stream.clear()
    assert wire.kinds()[-1] == "clear"
    assert stream.queued_s == 0.0 and await stream.wait_played(0)
    sent = len(wire.sent)
    assert not await tick_to(stream, clock, clock.now() + 1.0)
    assert len(wire.sent) == sent
    # The peer echoes the markers of the audio it dropped: none of them is a prompt that played.
    stream.echoed(1)
    stream.echoed(2)
    assert wire.played == []


async def test_clear_drops_the_play_time_reports_too(clock):
    wire = Wire(clock)
    stream = PacedStream(Pacer(clock), ULAW_8K, wire.frame, wire.played.append)
    await stream.play(1, prompt(0.04))
    await stream.clear()
    assert not await tick_to(stream, clock, clock.now() + 1.0)
    assert wire.played == []


async def test_a_closed_transport_ends_the_stream(clock):
    wire = Wire(clock, fail=True)
    stream = echoing(Pacer(clock), wire)
    await stream.play(1, prompt(1.0))
    assert not await stream.tick(clock.now() + 0.5)
    assert await stream.wait_played(0)
    stream.close()
    await stream.play(2, prompt(1.0))
    assert not await stream.tick(clock.now() + 1.0)


class Backlog(asyncio.DatagramTransport):
    """A transport (a datagram one: RTP) holding bytes it has not sent yet."""

    def __init__(self, unsent: int) -> None:
        super().__init__()
        self.unsent = unsent

    def get_write_buffer_size(self) -> int:
        return self.unsent


async def test_a_peer_that_does_not_read_is_skipped_not_waited_for(wire, clock):
    backlog = Backlog(MAX_UNSENT_BYTES + 1)
    stream = echoing(Pacer(clock), wire, transport=backlog)
    await stream.play(1, prompt(1.0))
    assert wire.sent == []
    backlog.unsent = 0
    assert await tick_to(stream, clock, clock.now() + 3.0)
    assert wire.frames() == 1 + LEAD  # a fresh run: no burst for the time it was stuck


async def test_the_shared_pacer_paces_every_stream_to_the_end():
    pacer = Pacer(SystemClock())
    wires = [Wire(), Wire()]
    streams = [echoing(pacer, w) for w in wires]
    running = asyncio.create_task(pacer.run())
    try:
        await streams[0].play(1, prompt(0.2))
        await streams[1].play(1, prompt(0.3))
        await asyncio.wait_for(asyncio.gather(*(w.marked.wait() for w in wires)), 5)
    finally:
        running.cancel()
    assert wires[0].kinds() == ["frame"] * 10 + ["marker"]
    assert wires[1].kinds() == ["frame"] * 15 + ["marker"]


class BrokenWire(Wire):
    """A transport whose sends fail in a way nobody planned for, once the first frame is out."""

    async def frame(self, frame: bytes) -> None:
        if self.sent:
            raise RuntimeError("a bug in the transport")
        await super().frame(frame)


async def test_one_broken_stream_does_not_stop_the_shared_pacer():
    pacer = Pacer(SystemClock())
    broken, good = BrokenWire(), Wire()
    running = asyncio.create_task(pacer.run())
    try:
        await echoing(pacer, broken, lead_s=0.0).play(1, prompt(0.2))
        await echoing(pacer, good).play(1, prompt(0.2))
        await asyncio.wait_for(good.marked.wait(), 5)
        assert not running.done()
    finally:
        running.cancel()
    assert broken.kinds() == ["frame"]
    assert good.kinds() == ["frame"] * 10 + ["marker"]


# --- fill: a stream that never stops (RTP) ------------------------------------------------------------

SILENT = ULAW_8K.silence * ULAW_8K.frame_bytes


def filled(pacer: Pacer, wire: Wire) -> PacedStream:
    """An RTP call's stream: no lead, no echo, silence in every slot without prompt audio."""
    return PacedStream(pacer, ULAW_8K, wire.frame, wire.played.append, lead_s=0.0, fill=wire.frame)


def slots(wire: Wire) -> str:
    """Each frame sent as one letter: `s` silence, `p` prompt audio."""
    return "".join("s" if detail == SILENT else "p" for _, kind, detail in wire.sent if kind == "frame")


async def test_fill_sends_silence_in_every_slot_without_prompt_audio_on_one_schedule(wire, clock):
    stream = filled(Pacer(clock), wire)
    start = clock.now()
    stream.start()
    for step in range(3):
        assert await tick_to(stream, clock, start + step * FRAME_S)  # ticks for as long as it lives
    await stream.play(1, prompt(0.1))  # this slot had its silence: the prompt takes the next ones
    for step in range(3, 12):
        assert await tick_to(stream, clock, start + step * FRAME_S)
    assert slots(wire) == "sss" + "p" * 5 + "ss" + "ss"
    assert [at for at, _, _ in wire.sent] == pytest.approx([start + k * FRAME_S for k in range(12)])  # one a slot
    assert wire.played == [1]  # reported once its play time had passed, silence or not
    assert await stream.wait_played(0)


async def test_fill_after_clear_is_silence_at_the_next_slot_and_close_stops_it(wire, clock):
    stream = filled(Pacer(clock), wire)
    start = clock.now()
    await stream.play(1, prompt(1.0))
    for step in range(1, 4):
        await tick_to(stream, clock, start + step * FRAME_S)
    await stream.clear()
    assert await tick_to(stream, clock, start + 4 * FRAME_S)
    assert slots(wire) == "pppps"
    stream.close()
    assert not await tick_to(stream, clock, start + 5 * FRAME_S)
    assert slots(wire) == "pppps"


async def test_the_shared_pacer_keeps_a_filled_stream_going_without_a_gap(clock):
    pacer = Pacer(clock)
    running = asyncio.create_task(pacer.run())
    try:
        wire = Wire(clock)
        stream = filled(pacer, wire)
        stream.start()
        for step in range(30):
            if step == 5:
                await stream.play(1, prompt(0.2))  # before the pacer's tick: it takes this slot
            for _ in range(5):
                await asyncio.sleep(0)  # the pacer's turn
            clock.advance(FRAME_S)
        stream.close()
    finally:
        running.cancel()
    times = [at for at, _, _ in wire.sent]
    assert slots(wire) == "s" * 5 + "p" * 10 + "s" * 15
    assert all(later - earlier == pytest.approx(FRAME_S) for earlier, later in itertools.pairwise(times))
