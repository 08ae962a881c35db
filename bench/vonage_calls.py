"""Vonage calls: N simultaneous Voice API calls speaking freely, in real time, against `kore-voice serve`.

    .venv/bin/python bench/vonage_calls.py [--calls 1,10] [--turns 3]

The same set-up and goals as bench/capacity.py (the Twilio door's benchmark, whose scenario, service
process and bot this reuses), through the Vonage door instead: each caller is a `VonageSocket`
(adapter/testing/vonage_peer.py) that plays Vonage in real time (640-byte 16 kHz L16 frames on a
monotonic schedule, line silence between what it says, `notify` echoed once the audio before it has
played), after a signed `/vonage/answer` whose NCCO names the socket. Calls start within one second of
each other; each hears the welcome, speaks `--turns` times (each after the previous reply has played),
and ends with a signed `completed` event.

Per number of calls it prints end of speech (the caller's last speech frame sent) to the reply's first
frame, p50 and p95; replies received of those due; the largest gap between outbound frames of one
prompt (goal: none over 40 ms); the service's CPU (% of one core) and CPU seconds per second of speech.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from capacity import FREE, GAP_GOAL_S, RESPONSE_GOALS_S, Results, Service, machine, pct, script_of

from adapter.kore.simulator.app import Simulator
from adapter.kore.simulator.config import SimulatorConfig, generate_secret
from adapter.kore.simulator.embedded import serving
from adapter.testing.vonage_peer import (
    RATE,
    VonageSocket,
    answer_query,
    query_payload,
    signed_headers,
    status_event,
)

SECRET = "bench-vonage-signature-secret-0123456789"


def utterance(folder: Path, text: str, voice: str, wpm: int) -> bytes:
    """espeak-ng saying `text` as Vonage carries it: raw 16 kHz 16-bit little-endian, no trailing silence
    (the caller's line sends its own), so the last frame sent is the end of speech."""
    wav, raw = folder / "say.wav", folder / "say.l16"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text], check=True)
    subprocess.run(["sox", str(wav), "-c", "1", "-r", str(RATE), "-e", "signed", "-b", "16", "-L", "-t", "raw",
                    str(raw), "reverse", "silence", "1", "0.02", "0.5%", "reverse", "pad", "0.2", "0"], check=True)
    return raw.read_bytes()


async def one_call(http: aiohttp.ClientSession, base: str, said: Sequence[bytes], results: Results) -> None:
    call_uuid = str(uuid.uuid4())
    query = answer_query(call_uuid, "15551230000", "15559870000")
    async with http.get(f"{base}/vonage/answer", params=query,
                        headers=signed_headers(SECRET, query_payload(query))) as resp:
        [connect] = await resp.json()
    async with VonageSocket(http, connect["endpoint"][0]) as peer:
        peer.talk()
        try:
            for turn, speech in enumerate(said, 1):
                await peer.until(lambda p, n=turn: len(p.echoed) >= n, 60)  # the last prompt has played
                results.due += 1
                results.speech_s += len(speech) / (2 * RATE)
                spoken = await peer.say(speech)
                await peer.until(lambda p, n=turn: len(p.notifies) > n, 30)
                _, frames = peer.prompts()[turn]
                results.responses.append(frames[0].at - spoken)
            body = json.dumps(status_event(call_uuid, "completed")).encode()
            async with http.post(f"{base}/vonage/event", data=body, headers=signed_headers(SECRET, body)):
                pass
            await peer.until(lambda p: p.closed, 10)
        except TimeoutError:
            results.failures.append(f"{call_uuid} timed out")
    results.gaps.extend(b.at - a.at for _, frames in peer.prompts() for a, b in itertools.pairwise(frames))
    results.failures.extend(peer.problems)


async def level(service: Service, speech: dict[tuple[int, int], bytes], calls: int, turns: int) -> None:
    results = Results()
    cpu0, wall0 = service.cpu_s(), time.monotonic()

    async def staggered(i: int) -> None:
        await asyncio.sleep(i / calls)  # calls come in over one second
        await one_call(http, service.url, [speech[k] for k in script_of(FREE, i, turns)], results)

    gc.collect()
    gc.disable()  # the callers' own garbage collection would show as gaps
    async with aiohttp.ClientSession() as http:
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


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        speech = {(r, v): utterance(Path(folder), text, voice, wpm)
                  for r, (text, _) in enumerate(FREE.requests) for v, (voice, wpm) in enumerate(FREE.voices)}
    sim = Simulator(SimulatorConfig(client_secret=generate_secret()), FREE.bot)
    async with serving(sim) as bot_url:
        service = Service(bot_url, sim.config, FREE.engine, {"VONAGE_SIGNATURE_SECRET": SECRET})
        try:
            print(f"Vonage door, {FREE.label}; {machine()}")
            for calls in args.calls:
                await level(service, speech, calls, args.turns)
        finally:
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=lambda s: [int(n) for n in s.split(",")], default=[1, 10])
    parser.add_argument("--turns", type=int, default=3)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
