"""KORE_* settings: URL shapes, version, credentials, mode, deadline; one-line errors; no secret shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from adapter.config import ConfigError, Reader, Secret
from adapter.kore.settings import KoreSettings
from adapter.kore.webhook_url import WebhookUrl

V2_URL = "https://bots.kore.ai/chatbot/v2/webhook/st-1234"
BASE = {"KORE_WEBHOOK_URL": V2_URL, "KORE_CLIENT_ID": "cs-abc", "KORE_CLIENT_SECRET": "top-secret-value"}


def read(**env: str) -> KoreSettings:
    return KoreSettings.read(Reader(env))


@pytest.fixture
def rsa_key_file(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> Path:
    path = tmp_path / "key.pem"
    path.write_bytes(rsa_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return path


@pytest.mark.parametrize("url,version,bot,instance,poll", [
    ("https://bots.kore.ai/chatbot/hooks/st-1", "v1", "st-1", None, "https://bots.kore.ai/chatbot/v2/webhook/st-1/poll/P"),
    ("https://bots.kore.ai/chatbot/hooks/st-1/hookInstance/ivrInst-9", "v1", "st-1", "ivrInst-9",
     "https://bots.kore.ai/chatbot/v2/webhook/st-1/poll/P"),
    ("https://host.example/kore/chatbot/v2/webhook/st-2/", "v2", "st-2", None,
     "https://host.example/kore/chatbot/v2/webhook/st-2/poll/P"),
    ("http://127.0.0.1:8780/chatbot/v2/webhook/st-3/hookInstance/i-1", "v2", "st-3", "i-1",
     "http://127.0.0.1:8780/chatbot/v2/webhook/st-3/poll/P"),
])
def test_webhook_url_shapes(url, version, bot, instance, poll):
    hook = WebhookUrl.parse(url)
    assert (hook.version, hook.bot_id, hook.instance) == (version, bot, instance)
    assert hook.url == url.rstrip("/")
    assert hook.poll_url("P") == poll


def test_forcing_a_version_rewrites_the_url_like_the_web_sdk():
    hook = WebhookUrl.parse("https://bots.kore.ai/chatbot/hooks/st-1/hookInstance/ivrInst-9", "v2")
    assert hook.url == "https://bots.kore.ai/chatbot/v2/webhook/st-1/hookInstance/ivrInst-9"
    assert read(**BASE, KORE_WEBHOOK_VERSION="v1").webhook.url == "https://bots.kore.ai/chatbot/hooks/st-1234"


def test_defaults_for_a_configured_bot():
    s = read(**BASE)
    assert (s.webhook.version, s.bot_id, s.algorithm, s.mode) == ("v2", "st-1234", "HS256", "sync")
    assert s.enforce_jti is False
    assert (s.turn_deadline_s, s.welcome_text, s.embedded) == (12.0, "Hi", False)
    assert s.client_secret.reveal() == "top-secret-value"


def test_no_url_means_the_embedded_simulator_and_needs_no_credentials():
    s = read()
    assert s.embedded is True
    aimed = s.for_simulator("http://127.0.0.1:9999/", "cs-sim", Secret("x" * 40), "st-sim")
    assert aimed.webhook.url == "http://127.0.0.1:9999/chatbot/v2/webhook/st-sim"
    assert (aimed.client_id, aimed.bot_id, aimed.embedded) == ("cs-sim", "st-sim", False)


def test_all_settings_are_read(rsa_key_file):
    s = read(KORE_WEBHOOK_URL=V2_URL, KORE_CLIENT_ID="cs-abc", KORE_JWT_ALGORITHM="rs512",
             KORE_PRIVATE_KEY_FILE=str(rsa_key_file), KORE_MODE="ASYNC",
             KORE_CALLBACK_TOKEN="0123456789abcdefXYZ", KORE_BOT_ID="st-other", KORE_ENFORCE_JTI="yes",
             KORE_TURN_DEADLINE_SECONDS="8.5", KORE_WELCOME_TEXT="hello")
    assert (s.algorithm, s.mode, s.bot_id, s.enforce_jti, s.turn_deadline_s, s.welcome_text) == (
        "RS512", "async", "st-other", True, 8.5, "hello")
    assert s.private_key.reveal().startswith("-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize("env,message", [
    ({"KORE_WEBHOOK_URL": "https://bots.kore.ai/api/st-1"},
     "KORE_WEBHOOK_URL must look like https://HOST/chatbot/v2/webhook/BOT_ID or https://HOST/chatbot/hooks/BOT_ID "
     "(optionally /hookInstance/ID)"),
    ({"KORE_WEBHOOK_URL": V2_URL}, "KORE_CLIENT_ID is required (the client id of the app bound to the channel)"),
    ({"KORE_WEBHOOK_URL": V2_URL, "KORE_CLIENT_ID": "cs"},
     "KORE_CLIENT_SECRET is required for KORE_JWT_ALGORITHM=HS256"),
    ({**BASE, "KORE_JWT_ALGORITHM": "RS256"}, "KORE_PRIVATE_KEY_FILE is required for KORE_JWT_ALGORITHM=RS256"),
    ({**BASE, "KORE_JWT_ALGORITHM": "ES256"},
     "KORE_JWT_ALGORITHM must be one of HS256, HS512, RS256, RS512, not 'ES256'"),
    ({**BASE, "KORE_WEBHOOK_VERSION": "v3"}, "KORE_WEBHOOK_VERSION must be one of auto, v1, v2, not 'v3'"),
    ({**BASE, "KORE_MODE": "async"}, "KORE_CALLBACK_TOKEN is required when KORE_MODE=async (it protects the POST_URL "
                                     "receiver)"),
    ({**BASE, "KORE_CALLBACK_TOKEN": "short"}, "KORE_CALLBACK_TOKEN must be at least 16 characters"),
    ({**BASE, "KORE_TURN_DEADLINE_SECONDS": "20"}, "KORE_TURN_DEADLINE_SECONDS must be at most 14 (Kore.ai times sync "
                                                   "requests out at 15 s)"),
    ({**BASE, "KORE_ENFORCE_JTI": "maybe"}, "KORE_ENFORCE_JTI must be true or false, not 'maybe'"),
])
def test_bad_settings_give_one_line_naming_the_setting(env, message):
    with pytest.raises(ConfigError) as info:
        read(**env)
    assert str(info.value) == message


def test_a_private_key_with_an_hs_algorithm_is_inconsistent(rsa_key_file):
    with pytest.raises(ConfigError, match="KORE_PRIVATE_KEY_FILE is set but KORE_JWT_ALGORITHM is HS256"):
        read(**BASE, KORE_PRIVATE_KEY_FILE=str(rsa_key_file))


def test_unreadable_or_wrong_key_files(tmp_path):
    with pytest.raises(ConfigError, match=r"^KORE_PRIVATE_KEY_FILE .*missing.pem: No such file or directory$"):
        read(**BASE, KORE_JWT_ALGORITHM="RS256", KORE_PRIVATE_KEY_FILE=str(tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="is not an unencrypted PEM RSA private key"):
        read(**BASE, KORE_JWT_ALGORITHM="RS256", KORE_PRIVATE_KEY_FILE=str(junk))


def test_secrets_never_show(tmp_path, rsa_key_file):
    s = read(**BASE, KORE_MODE="async", KORE_CALLBACK_TOKEN="callback-token-value-123")
    shown = f"{s!r} {s} {s.client_secret} {s.callback_token}"
    assert "top-secret-value" not in shown and "callback-token-value-123" not in shown
    assert "Secret('***')" in repr(s)
    rs = read(KORE_WEBHOOK_URL=V2_URL, KORE_CLIENT_ID="cs", KORE_JWT_ALGORITHM="RS256",
              KORE_PRIVATE_KEY_FILE=str(rsa_key_file))
    assert "PRIVATE KEY" not in repr(rs)
