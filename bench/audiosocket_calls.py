"""AudioSocket calls: N simultaneous Asterisk calls speaking freely, in real time, against `kore-voice serve`.

    .venv/bin/python bench/audiosocket_calls.py [--calls 1,10] [--turns 3]

The same set-up and goals as bench/capacity.py (the Twilio door's benchmark, whose scenario, service
process and bot this reuses; its μ-law utterances become the 8 kHz PCM Asterisk would pass on), through
the AudioSocket door instead: each caller is an `AudioSocketPeer` (adapter/testing/audiosocket_peer.py)
that plays Asterisk over TCP in real time (the UUID, then 320-byte slin frames every 20 ms on a monotonic
schedule, silence between what it says). Asterisk echoes nothing, so a caller speaks once the door has
sent nothing for QUIET_S (the prompt has played out), and hangs up with 0x00 after its last reply.

Per number of calls it prints end of speech (the caller's last speech frame sent) to the reply's first
frame, p50 and p95; replies received of those due; the largest gap between outbound frames of one
prompt (goal: none over 40 ms); the service's CPU (% of one core) and CPU seconds per second of speech.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import socket
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from capacity import FREE, GAP_GOAL_S, RESPONSE_GOALS_S, Results, Service, machine, pct, script_of, utterance

from adapter.audio import g711
from adapter.kore.simulator.app import Simulator
from adapter.kore.simulator.config import SimulatorConfig, generate_secret
from adapter.kore.simulator.embedded import serving
from adapter.testing.audiosocket_peer import Arrival, AudioSocketPeer

#: this long without a frame from the door, its prompt has played out (its lead is 0.1 s)
QUIET_S = 0.4


async def quiet(peer: AudioSocketPeer, after: float) -> None:
    """Until the door has sent audio after `after` and then nothing for QUIET_S."""
    while not (peer.audio_since(after) and time.monotonic() - peer.audio()[-1].at > QUIET_S):
        await asyncio.sleep(0.05)


def prompt_gaps(frames: list[Arrival]) -> list[float]:
    """Gaps between frames of one prompt: a pause longer than QUIET_S is between prompts."""
    return [gap for a, b in itertools.pairwise(frames) if (gap := b.at - a.at) <= QUIET_S]


async def one_call(host: str, port: int, said: Sequence[bytes], results: Results) -> None:
    async with AudioSocketPeer(host, port) as peer:
        try:
            async with asyncio.timeout(60 + 30 * len(said)):
                await quiet(peer, 0.0)  # the welcome has played
                for speech in said:
                    results.due += 1
                    results.speech_s += len(speech) / 16000
                    spoken = await peer.say(speech)
                    await peer.until(lambda p, at=spoken: bool(p.audio_since(at)), 30)
                    results.responses.append(peer.audio_since(spoken)[0].at - spoken)
                    await quiet(peer, spoken)
                await peer.hang_up()
                await peer.until(lambda p: p.closed, 10)
        except TimeoutError:
            results.failures.append(f"{peer.call} timed out")
    results.gaps.extend(prompt_gaps(peer.audio()))
    results.failures.extend(peer.problems)


async def level(service: Service, port: int, speech: dict[tuple[int, int], bytes], calls: int, turns: int) -> None:
    results = Results()
    cpu0, wall0 = service.cpu_s(), time.monotonic()

    async def staggered(i: int) -> None:
        await asyncio.sleep(i / calls)  # calls come in over one second
        await one_call("127.0.0.1", port, [speech[k] for k in script_of(FREE, i, turns)], results)

    gc.collect()
    gc.disable()  # the callers' own garbage collection would show as gaps
    await asyncio.gather(*(staggered(i) for i in range(calls)))
    gc.enable()
    cpu_s = service.cpu_s() - cpu0
    responses, gaps = results.responses or [float("inf")], results.gaps or [0.0]
    goal = RESPONSE_GOALS_S.get(calls)
    print(f"{calls:3d} calls: end of speech -> reply p50 {pct(responses, 50):.2f} s, p95 {pct(responses, 95):.2f} s"
          f"{f' (goal {goal:g} s)' if goal else ''}; replies {len(results.responses)}/{results.due}; "
          f"max gap {max(gaps) * 1000:.1f} ms (goal {GAP_GOAL_S * 1000:.0f}); "
          f"CPU {100 * cpu_s / (time.monotonic() - wall0):.0f} % of a core, "
          f"{cpu_s / max(results.speech_s, 1e-9):.2f} CPU s per s of speech")
    for failure in results.failures[:5]:
        print("   ", failure)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        speech = {(r, v): g711.ulaw_to_pcm16(utterance(Path(folder), text, voice, wpm))
                  for r, (text, _) in enumerate(FREE.requests) for v, (voice, wpm) in enumerate(FREE.voices)}
    sim = Simulator(SimulatorConfig(client_secret=generate_secret()), FREE.bot)
    port = free_port()
    async with serving(sim) as bot_url:
        service = Service(bot_url, sim.config, FREE.engine, {"KORE_VOICE_AUDIOSOCKET_PORT": str(port)})
        try:
            print(f"AudioSocket door, {FREE.label}; {machine()}")
            for calls in args.calls:
                await level(service, port, speech, calls, args.turns)
        finally:
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=lambda s: [int(n) for n in s.split(",")], default=[1, 10])
    parser.add_argument("--turns", type=int, default=3)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
