"""Running the simulator on 127.0.0.1: for `kore-voice simulator`, and in-process when no bot URL is set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from adapter.calls.clock import Clock
from adapter.kore.settings import KoreSettings
from adapter.kore.simulator.app import Simulator
from adapter.kore.simulator.config import SimulatorConfig, generate_secret
from adapter.kore.simulator.script import Script


@dataclass(frozen=True, slots=True)
class EmbeddedBot:
    simulator: Simulator
    settings: KoreSettings  # the service's Kore settings, aimed at this simulator
    url: str


@asynccontextmanager
async def serving(simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve `simulator` until the block ends; yields its base URL (port 0 picks a free port)."""
    runner = web.AppRunner(simulator.create_app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        yield f"http://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def embedded_bot(kore: KoreSettings, clock: Clock, *, script: Script | None = None,
                       post_url: str | None = None) -> AsyncIterator[EmbeddedBot]:
    """The built-in bot for a service with no KORE_WEBHOOK_URL, with a fresh throwaway secret.

    Args:
        kore: the service's settings (mode, JTI and callback token carry over).
        clock: the service's clock, so the bot's slow steps and polls keep the service's time.
        script: the bot to play (default: the banking IVR).
        post_url: async mode: the service's own callback URL, token included.
    """
    config = SimulatorConfig(client_secret=generate_secret(), enforce_jti=kore.enforce_jti, mode=kore.mode,
                             post_url=post_url, access_token=kore.callback_token, secret_generated=True)
    simulator = Simulator(config, script, clock=clock)
    async with serving(simulator) as url:
        settings = kore.for_simulator(url, config.client_id, config.client_secret, config.bot_id)
        yield EmbeddedBot(simulator, settings, url)
