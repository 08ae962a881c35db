"""Per-request overhead of KoreClient over a bare aiohttp POST to the same local endpoint.

A trivial aiohttp server on 127.0.0.1 answers every POST with a fixed v2 body (two messages, one a
button template). The baseline POSTs a prebuilt payload and reads the answer; ours goes through
`KoreClient.send_text` (payload, cached JWT, JSON, parsing, flattening to a BotReply). Runs are
interleaved in rounds so both see the same machine. Goal: difference at p99 <= 1 ms.

    python bench/kore_client.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp
from aiohttp import web

from adapter.calls.clock import SystemClock
from adapter.calls.info import CallInfo, InputMeta
from adapter.config import Secret
from adapter.kore.client import KoreClient
from adapter.kore.settings import KoreSettings

BOT = "st-bench"
ANSWER = json.dumps({
    "to": "call-bench", "from": BOT, "_v": "v2", "endOfTask": False,
    "data": [
        {"type": "text", "val": "The balance in your Salary Account ending with 3984 is $54,883",
         "createdOn": "2022-05-11T06:27:06.764Z", "messageId": "ms-1"},
        {"type": "text", "val": json.dumps({"type": "template", "payload": {
            "template_type": "button", "text": "Anything else?", "buttons": [
                {"type": "postback", "title": "Transfer", "payload": "transfer"},
                {"type": "postback", "title": "Agent", "payload": "agent"}]}}),
         "createdOn": "2022-05-11T06:27:07.032Z", "messageId": "ms-2"},
    ],
}).encode()


async def answer(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=ANSWER, content_type="application/json")


def percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(samples_ns, n=100, method="inclusive")
    return cuts[49] / 1e6, cuts[94] / 1e6, cuts[98] / 1e6


async def main(requests: int, rounds: int) -> None:
    app = web.Application()
    app.router.add_post(f"/chatbot/v2/webhook/{BOT}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}"
    settings = KoreSettings().for_simulator(base, "cs-bench", Secret("b" * 64), BOT)
    call = CallInfo("call-bench", caller="+14155550100", called="+18005550199", door="bench")
    meta = InputMeta("speech", confidence=0.9)
    url = f"{base}/chatbot/v2/webhook/{BOT}"
    bare_body = json.dumps({"session": {"new": False}, "message": {"type": "text", "val": "check my balance"},
                            "from": {"id": call.user_id}, "to": {"id": BOT}}).encode()
    bare_headers = {"Authorization": "bearer x.y.z", "Content-Type": "application/json"}
    bare: list[int] = []
    ours: list[int] = []
    async with aiohttp.ClientSession() as session:
        client = KoreClient(settings, session, SystemClock())

        async def one_bare() -> None:
            async with session.post(url, data=bare_body, headers=bare_headers) as resp:
                await resp.read()

        async def one_ours() -> None:
            await client.send_text(call, "check my balance", meta)

        for _ in range(200):  # warm up connections, caches and the JWT
            await one_bare()
            await one_ours()
        per_round = requests // rounds
        for _ in range(rounds):
            for fn, out in ((one_bare, bare), (one_ours, ours)):
                for _ in range(per_round):
                    start = time.perf_counter_ns()
                    await fn()
                    out.append(time.perf_counter_ns() - start)
    await runner.cleanup()

    b, o = percentiles(bare), percentiles(ours)
    print(f"requests per side: {len(bare)} (in {rounds} interleaved rounds), loopback 127.0.0.1")
    print(f"{'':22}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    print(f"{'bare aiohttp POST':22}{b[0]:10.3f}{b[1]:10.3f}{b[2]:10.3f}")
    print(f"{'KoreClient.send_text':22}{o[0]:10.3f}{o[1]:10.3f}{o[2]:10.3f}")
    print(f"{'overhead':22}{o[0] - b[0]:10.3f}{o[1] - b[1]:10.3f}{o[2] - b[2]:10.3f}")
    print(f"ratio at p50: {o[0] / b[0]:.2f}x; overhead at p99 {o[2] - b[2]:.3f} ms "
          f"({'within' if o[2] - b[2] <= 1.0 else 'OVER'} the 1 ms goal)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="requests per side (default 4000)")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds (default 8)")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
