"""The service's typed app state: what the server sets up and every door reads, as `web.AppKey`s."""

from __future__ import annotations

from aiohttp import web

from adapter.call_registry import CallRegistry
from adapter.calls.clock import Clock
from adapter.config import Settings
from adapter.conversation.services import Services
from adapter.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
CLOCK = web.AppKey("clock", Clock)
CALLS = web.AppKey("calls", CallRegistry)
#: Set while the app starts up (models loaded, synthesizer and bot up); read by handlers.
SERVICES = web.AppKey("services", Services)
