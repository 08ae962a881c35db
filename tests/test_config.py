"""Settings: file + environment, typed errors naming the setting, secrets that never print."""

from pathlib import Path

import pytest

from adapter.config import ConfigError, Reader, Secret, Settings, load_mapping


def test_defaults_without_any_setting():
    settings = Settings.load(environ={})
    assert settings.asr.engine == "auto"
    assert settings.asr.vosk_model is None
    assert settings.limits.max_seconds == 60.0


def test_environment_overrides_the_config_file(tmp_path: Path):
    config = tmp_path / "kore-voice.toml"
    config.write_text('KORE_VOICE_ASR = "vosk"\nkore_voice_max_turn_seconds = 30\n')
    assert Settings.load(config, environ={}).asr.engine == "vosk"
    assert Settings.load(config, environ={}).limits.max_seconds == 30.0
    env = {"KORE_VOICE_ASR": "pocketsphinx"}
    assert Settings.load(config, environ=env).asr.engine == "pocketsphinx"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KORE_VOICE_ASR": "google"}, "KORE_VOICE_ASR must be one of auto, whisper, vosk, pocketsphinx"),
        ({"KORE_VOICE_MAX_TURN_SECONDS": "long"}, "KORE_VOICE_MAX_TURN_SECONDS must be a number"),
        ({"KORE_VOICE_MAX_TURN_SECONDS": "0"}, "KORE_VOICE_MAX_TURN_SECONDS must be at least 0.1"),
        ({"KORE_VOICE_MAX_AUDIO_BYTES": "2048.5"}, "KORE_VOICE_MAX_AUDIO_BYTES must be a whole number"),
    ],
)
def test_bad_values_name_the_setting_in_one_line(env, message):
    with pytest.raises(ConfigError) as err:
        Settings.load(environ=env)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_unreadable_or_invalid_config_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_mapping(tmp_path / "missing.toml", {})
    bad = tmp_path / "bad.toml"
    bad.write_text("KORE_VOICE_ASR = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_mapping(bad, {})
    nested = tmp_path / "nested.toml"
    nested.write_text("[section]\nx = 1\n")
    with pytest.raises(ConfigError, match="SECTION must be a single value"):
        load_mapping(nested, {})


def test_flags_accept_usual_spellings():
    r = Reader({"A": "yes", "B": "off", "C": "maybe"})
    assert r.flag("A") is True and r.flag("B") is False and r.flag("MISSING", True) is True
    with pytest.raises(ConfigError, match="C must be true or false"):
        r.flag("C")


def test_secret_never_prints_but_can_be_revealed():
    secret = Secret("s3cr3t-value")
    assert "s3cr3t" not in f"{secret} {secret!r} {secret!s} {[secret]}"
    assert secret.reveal() == "s3cr3t-value"
    assert Reader({"K": " s3cr3t "}).secret("K").reveal() == "s3cr3t"


def test_service_settings_defaults_and_checks():
    service = Settings.load(environ={}).service
    assert (service.host, service.port, service.api_key, service.public_url) == ("127.0.0.1", 8080, None, None)
    assert (service.turns_per_minute, service.max_calls, service.asr_processes) == (30, 100, None)
    env = {"KORE_VOICE_HOST": "0.0.0.0", "KORE_VOICE_PORT": "0", "KORE_VOICE_API_KEY": "k3y-value",
           "KORE_VOICE_PUBLIC_URL": "https://voice.example.com/", "KORE_VOICE_ASR_PROCESSES": "0"}
    service = Settings.load(environ=env).service
    assert (service.host, service.port, service.public_url) == ("0.0.0.0", 0, "https://voice.example.com")
    assert service.asr_processes == 0 and "k3y" not in repr(service) and service.api_key.reveal() == "k3y-value"
    for bad, message in [({"KORE_VOICE_PORT": "70000"}, "KORE_VOICE_PORT must be at most 65535"),
                         ({"KORE_VOICE_PUBLIC_URL": "voice.example.com"}, "KORE_VOICE_PUBLIC_URL must start with"),
                         ({"KORE_VOICE_TURNS_PER_MINUTE": "0"}, "KORE_VOICE_TURNS_PER_MINUTE must be at least 1")]:
        with pytest.raises(ConfigError, match=message):
            Settings.load(environ=bad)
