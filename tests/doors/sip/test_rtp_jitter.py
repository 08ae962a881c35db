"""The jitter buffer alone: one pop per 20 ms tick, frames in sequence order, None for silence."""

from __future__ import annotations

import pytest

from adapter.doors.sip.jitter import JitterBuffer


@pytest.mark.parametrize("steps, out, counts", [
    pytest.param("1 t 2 t 3 t 4 t t", "- 1 2 3 4", {}, id="in order, after filling 40 ms"),
    pytest.param("1 t 3 t 2 t 4 t t", "- 1 2 3 4", {}, id="overtaken packet still first"),
    pytest.param("1 t 2 t t 4 t 5 t t", "- 1 2 - 4 5", {"lost": 1}, id="loss filled with silence"),
    pytest.param("1 t 2 t 4 t 5 t 3 t 6 t t", "- 1 2 - 4 5 6", {"lost": 1, "late": 1}, id="too late dropped"),
    pytest.param("1 1 t 2 1 t 2 t t", "- 1 2 -", {"duplicate": 3, "underrun": 1}, id="duplicates dropped"),
    pytest.param("65534 t 65535 t 1 t 0 t 2 t t", "- 65534 65535 0 1 2", {}, id="16-bit wrap-around"),
    pytest.param("1 2 3 4 5 t t t t", "3 4 5 -", {"overflow": 2, "underrun": 1}, id="burst over 60 ms"),
    pytest.param("1 t 2 t t t 3 t t 4 t", "- 1 2 - - 3 4", {"underrun": 1}, id="underrun keeps its place"),
    pytest.param("1 t 2 t 30000 t 30001 t t 5 t t t", "- 1 - 30000 30001 - 5 -", {"restarted": 2, "underrun": 1},
                 id="far jump: a new stream"),
])
def test_timeline(steps: str, out: str, counts: dict[str, int]) -> None:
    """Push the numbered packets (each frame is its number) and pop at each "t"; "-" is silence."""
    buffer = JitterBuffer()
    got = []
    for step in steps.split():
        if step == "t":
            frame = buffer.pop()
            got.append("-" if frame is None else frame.decode())
        else:
            buffer.push(int(step), step.encode())
    assert " ".join(got) == out
    assert dict(+buffer.counts) == counts


def test_packets_that_are_not_audio_hold_their_number_without_being_a_loss() -> None:
    buffer = JitterBuffer()
    buffer.push(1, b"1")
    buffer.push(2, None)  # a telephone-event
    buffer.push(3, b"3")
    assert [buffer.pop() for _ in range(3)] == [b"1", b"3", None]
    assert buffer.counts["lost"] == 0


def test_prefetch_must_fit_the_depth() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(depth=2, prefetch=3)
