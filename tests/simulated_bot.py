"""The Kore.ai simulator as a door test's bot, on 127.0.0.1 port 0: the one place door tests reach
adapter.kore (tests/test_architecture.py keeps every file under tests/doors free of it).

    async with simulated_bot(script) as bot:
        settings = door_settings(**bot.env())           # the service aimed at it
        ...
        assert bot.closures(call_id) == 1               # what the bot was sent, per call
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from adapter.kore.simulator.app import Simulator
from adapter.kore.simulator.config import SimulatorConfig, generate_secret
from adapter.kore.simulator.embedded import serving
from adapter.kore.simulator.script import parse_script


class SimulatedBot:
    """A running simulator: the settings that reach it, and the webhook bodies it was sent."""

    def __init__(self, simulator: Simulator, url: str) -> None:
        self._simulator = simulator
        self.url = url

    def env(self) -> dict[str, str]:
        """KORE_* settings that aim the service at this bot."""
        config = self._simulator.config
        return {"KORE_WEBHOOK_URL": f"{self.url}/chatbot/v2/webhook/{config.bot_id}",
                "KORE_CLIENT_ID": config.client_id, "KORE_CLIENT_SECRET": config.client_secret.reveal()}

    def bodies(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """The JSON bodies the bot was sent (of the call `user_id` only, when given), oldest first."""
        bodies = [r.body for r in self._simulator.requests if isinstance(r.body, dict)]
        return [b for b in bodies if user_id is None or b.get("from", {}).get("id") == user_id]

    def texts_from(self, user_id: str) -> list[str]:
        """What the call's caller said or typed, as the bot received it."""
        return [b["message"]["val"] for b in self.bodies(user_id) if b.get("message", {}).get("type") == "text"]

    def closures(self, user_id: str) -> int:
        """How many `SESSION_CLOSURE`s the call sent."""
        return sum(1 for b in self.bodies(user_id) if b.get("message", {}).get("val") == "SESSION_CLOSURE")


@asynccontextmanager
async def simulated_bot(script: Mapping[str, Any] | None = None) -> AsyncIterator[SimulatedBot]:
    """The simulator playing `script` (a bot as the simulator's YAML holds it; default: the banking IVR)."""
    simulator = Simulator(SimulatorConfig(client_secret=generate_secret()),
                          None if script is None else parse_script(dict(script), "test line"))
    async with serving(simulator) as url:
        yield SimulatedBot(simulator, url)
