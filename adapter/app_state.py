"""The service's typed app state: what the server sets up and every door reads, as `web.AppKey`s.

Doors read only the settings they need (a door's own settings key lives with the door), never the whole
`Settings`: that keeps the doors free of the module that assembles every package's settings.
"""

from __future__ import annotations

from aiohttp import web

from adapter.audio.limits import AudioLimits
from adapter.call_registry import CallRegistry
from adapter.calls.clock import Clock
from adapter.conversation.services import Services
from adapter.conversation.settings import ConversationSettings
from adapter.metrics import Metrics
from adapter.service_settings import ServiceSettings
from adapter.speech.settings import TtsSettings

SERVICE = web.AppKey("service_settings", ServiceSettings)
CONVERSATION = web.AppKey("conversation_settings", ConversationSettings)
LIMITS = web.AppKey("audio_limits", AudioLimits)
TTS = web.AppKey("tts_settings", TtsSettings)
METRICS = web.AppKey("metrics", Metrics)
CLOCK = web.AppKey("clock", Clock)
CALLS = web.AppKey("calls", CallRegistry)
#: Set while the app starts up (models loaded, synthesizer and bot up); read by handlers.
SERVICES = web.AppKey("services", Services)
