"""`kore-voice token` and `kore-voice simulator`, and the embedded simulator the service will use."""

from __future__ import annotations

import argparse

import aiohttp
import jwt
import pytest

from adapter.calls.clock import SystemClock
from adapter.calls.info import CallInfo
from adapter.commands import simulator as simulator_command
from adapter.commands import token as token_command
from adapter.config import ConfigError, Secret
from adapter.kore.client import KoreClient
from adapter.kore.settings import KoreSettings
from adapter.kore.simulator import Simulator, SimulatorConfig, embedded_bot

SECRET = "command-test-secret-0123456789abcdef0123456789abcdef0123456789ab"
APP = {"KORE_WEBHOOK_URL": "https://bots.kore.ai/chatbot/v2/webhook/st-1", "KORE_CLIENT_ID": "cs-app",
       "KORE_CLIENT_SECRET": SECRET}


def parse(module, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    module.register(parser.add_subparsers())
    return parser.parse_args(list(argv))


@pytest.fixture
def env(monkeypatch):
    for key in ("KORE_WEBHOOK_URL", "KORE_CLIENT_ID", "KORE_CLIENT_SECRET", "KORE_MODE", "KORE_CALLBACK_TOKEN",
                "KORE_JWT_ALGORITHM", "KORE_PRIVATE_KEY_FILE", "KORE_BOT_ID", "KORE_ENFORCE_JTI"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_token_prints_a_jwt_for_the_configured_app(env, capsys):
    for key, value in APP.items():
        env.setenv(key, value)
    args = parse(token_command, "token", "--sub", "call-abc")
    assert args.run(args) == 0
    printed = capsys.readouterr().out.strip()
    claims = jwt.decode(printed, SECRET, algorithms=["HS256"])
    assert (claims["appId"], claims["sub"]) == ("cs-app", "call-abc")


def test_token_reads_a_config_file_and_needs_credentials(env, tmp_path, capsys):
    config = tmp_path / "kore.toml"
    config.write_text('KORE_CLIENT_ID = "cs-file"\n')
    args = parse(token_command, "--config", str(config), "token", "--sub", "x")
    with pytest.raises(ConfigError, match="KORE_CLIENT_SECRET is required for KORE_JWT_ALGORITHM=HS256"):
        args.run(args)
    assert capsys.readouterr().out == ""


def test_simulator_banner_shows_the_generated_secret_only():
    generated = Simulator(SimulatorConfig.from_settings(KoreSettings()))
    text = simulator_command.banner(generated, "http://127.0.0.1:8780")
    secret = generated.config.client_secret.reveal()
    assert text.splitlines() == [
        'Kore.ai simulator "Demo Bank" on http://127.0.0.1:8780 (sync mode, polling on)',
        "  KORE_WEBHOOK_URL=http://127.0.0.1:8780/chatbot/v2/webhook/st-simulator",
        "    (v1 shape: http://127.0.0.1:8780/chatbot/hooks/st-simulator)",
        "  KORE_CLIENT_ID=cs-simulator",
        f"  KORE_CLIENT_SECRET={secret}  (generated for this run)",
        "  KORE_JWT_ALGORITHM=HS256  KORE_ENFORCE_JTI=false",
        "Press Ctrl-C to stop.",
    ]
    configured = Simulator(SimulatorConfig(client_secret=Secret(SECRET)))
    assert SECRET not in simulator_command.banner(configured, "http://127.0.0.1:1")


def test_simulator_command_hides_a_configured_secret(env, capsys, monkeypatch):
    for key, value in APP.items():
        env.setenv(key, value)
    captured = {}

    async def fake_serve(simulator, port):
        captured["config"] = simulator.config

    monkeypatch.setattr(simulator_command, "_serve", fake_serve)
    args = parse(simulator_command, "simulator", "--port", "0", "--no-polling")
    args.run(args)
    config = captured["config"]
    assert (config.client_id, config.bot_id, config.polling) == ("cs-app", "st-1", False)
    assert config.secret_generated is False
    assert config.client_secret.reveal() == SECRET


def test_simulator_command_in_async_mode_needs_a_post_url(env):
    env.setenv("KORE_MODE", "async")
    env.setenv("KORE_CALLBACK_TOKEN", "0123456789abcdef0123")
    args = parse(simulator_command, "simulator")
    with pytest.raises(ConfigError, match="--post-url is required when KORE_MODE=async"):
        args.run(args)


async def test_embedded_bot_gives_settings_the_client_can_use():
    async with embedded_bot(KoreSettings(), clock := SystemClock()) as bot, aiohttp.ClientSession() as http:
        assert bot.settings.webhook.url == f"{bot.url}/chatbot/v2/webhook/st-simulator"
        reply = await KoreClient(bot.settings, http, clock).start_call(CallInfo.new("test"))
    assert reply.prompts[0] == "Welcome to Demo Bank."
    assert bot.simulator.requests[0].claims["appId"] == "cs-simulator"
