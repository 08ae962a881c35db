"""An offline Kore.ai Webhook channel with scripted bots: for development, tests and the embedded bot."""

from adapter.kore.simulator.app import SIMULATOR, RecordedCallback, RecordedRequest, Simulator, create_app
from adapter.kore.simulator.config import SimulatorConfig, generate_secret
from adapter.kore.simulator.embedded import EmbeddedBot, embedded_bot, serving
from adapter.kore.simulator.script import Script, ScriptError, load_script

__all__ = ["SIMULATOR", "EmbeddedBot", "RecordedCallback", "RecordedRequest", "Script", "ScriptError",
           "Simulator", "SimulatorConfig", "create_app", "embedded_bot", "generate_secret", "load_script",
           "serving"]
