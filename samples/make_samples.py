"""Rebuilds the WAV samples in samples/: IVR phrases spoken by espeak-ng and keypad tones (DTMF).

Run from the repository root (needs espeak-ng and sox on PATH: `apt install espeak-ng sox`):

    .venv/bin/python samples/make_samples.py

Every sample is written twice: 16 kHz 16-bit mono PCM (`*_16k.wav`) and 8 kHz mono G.711 mu-law
(`*_8k_ulaw.wav`, WAV format tag 7), the two forms callers and phone systems send. The output is
deterministic for a given espeak-ng and sox: a fixed voice (en-us+f2, 140 words per minute), a fixed
noise seed, and sox in repeatable mode without dither. The script also rewrites samples/README.md,
the list of files and what each should transcribe to, from the same table.
"""

from __future__ import annotations

import subprocess
import tempfile
import textwrap
import wave
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VOICE, WORDS_PER_MINUTE = "en-us+f2", 140  # a US voice the offline default (PocketSphinx) hears well
SEED = 3

# Keypad frequencies (row, column) in Hz, ITU-T Q.23; see specs/telephony.md section 8.2.
DTMF_HZ = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}
TONE_S = GAP_S = 0.080      # a brisk but in-spec keypad: 80 ms on, 80 ms off (minimum 40/40)
TONE_DBFS = -10.0           # level of each of the two frequencies; together they peak near -4 dBFS
RAMP_S = 0.002              # raised-cosine edges so tone starts and ends do not click
EDGE_S = 0.25               # quiet before the first and after the last key
PAUSE_S = 0.5               # between a spoken prompt and the keys that follow it
NOISE_DBFS = -60.0          # RMS of a white noise floor, so quiet parts are not digital zero

FORMATS = (("16k", 16000, "pcm"), ("8k_ulaw", 8000, "ulaw"))

Builder = Callable[[int, np.random.Generator], np.ndarray]


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768.0


def write_pcm16(path: Path, samples: np.ndarray, rate: int) -> None:
    data = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data)


def speech(text: str) -> Builder:
    """`text` spoken by espeak-ng (22.05 kHz) and resampled by sox to the wanted rate."""
    def build(rate: int, rng: np.random.Generator) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            raw, resampled = Path(tmp, "espeak.wav"), Path(tmp, "rate.wav")
            run("espeak-ng", "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "-w", str(raw), text)
            run("sox", "-D", "-R", str(raw), "-r", str(rate), "-b", "16", "-e", "signed-integer",
                str(resampled))
            return read_wav(resampled)
    return build


def silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(round(seconds * rate))


def dtmf_tone(key: str, rate: int) -> np.ndarray:
    n = round(TONE_S * rate)
    t = np.arange(n) / rate
    amplitude = 10 ** (TONE_DBFS / 20)
    low, high = DTMF_HZ[key]
    tone = amplitude * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
    ramp = round(RAMP_S * rate)
    edge = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    tone[:ramp] *= edge
    tone[-ramp:] *= edge[::-1]
    return tone


def keys(sequence: str, lead: float = EDGE_S) -> Builder:
    """Real DTMF tones for `sequence`, 80 ms each with 80 ms gaps, quiet at both ends."""
    def build(rate: int, rng: np.random.Generator) -> np.ndarray:
        parts = [silence(lead, rate)]
        for i, key in enumerate(sequence):
            if i:
                parts.append(silence(GAP_S, rate))
            parts.append(dtmf_tone(key, rate))
        parts.append(silence(EDGE_S, rate))
        return np.concatenate(parts)
    return build


def then(*builders: Builder) -> Builder:
    def build(rate: int, rng: np.random.Generator) -> np.ndarray:
        return np.concatenate([b(rate, rng) for b in builders])
    return build


def with_noise_floor(builder: Builder) -> Builder:
    def build(rate: int, rng: np.random.Generator) -> np.ndarray:
        signal = builder(rate, rng)
        return signal + rng.normal(0.0, 10 ** (NOISE_DBFS / 20), signal.size)
    return build


@dataclass(frozen=True, slots=True)
class Sample:
    stem: str
    text: str
    digits: str
    what: str
    build: Builder


SAMPLES = (
    Sample("check_my_balance", "check my balance", "", "spoken phrase", speech("check my balance")),
    Sample("talk_to_an_agent", "talk to an agent", "", "spoken phrase", speech("talk to an agent")),
    Sample("yes", "yes", "", "spoken word", speech("yes")),
    Sample("no", "no", "", "spoken word", speech("no")),
    Sample("keys_1234_pound", "", "1234#", "keypad tones", with_noise_floor(keys("1234#"))),
    Sample("keys_5", "", "5", "keypad tone", with_noise_floor(keys("5"))),
    Sample("check_my_balance_then_keys_2468_pound", "check my balance", "2468#",
           "spoken phrase, 0.5 s pause, then keypad tones",
           with_noise_floor(then(speech("check my balance"), keys("2468#", lead=PAUSE_S)))),
)


def write_sample(sample: Sample, suffix: str, rate: int, encoding: str) -> tuple[Path, float]:
    # One generator per file, seeded by its name: a file does not change when others are added.
    rng = np.random.default_rng([SEED, zlib.crc32(sample.stem.encode()), rate])
    samples = sample.build(rate, rng)
    path = HERE / f"{sample.stem}_{suffix}.wav"
    if encoding == "pcm":
        write_pcm16(path, samples, rate)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            linear = Path(tmp, "linear.wav")
            write_pcm16(linear, samples, rate)
            run("sox", "-D", "-R", str(linear), "-e", "u-law", "-b", "8", str(path))
    return path, samples.size / rate


def readme(rows: list[tuple[Path, str, float, Sample]]) -> str:
    intro = (
        "Short WAV files for trying the adapter, rebuilt by `.venv/bin/python samples/make_samples.py`. "
        f"Speech is espeak-ng, voice `{VOICE}` at {WORDS_PER_MINUTE} words per minute. Keypad tones are "
        f"real DTMF pairs, {TONE_S * 1000:.0f} ms on and {GAP_S * 1000:.0f} ms off, each frequency at "
        f"{TONE_DBFS:g} dBFS, over a {NOISE_DBFS:g} dBFS noise floor. Each sample comes as 16 kHz 16-bit "
        "mono PCM (`_16k`) and as 8 kHz mono G.711 mu-law in a WAV (format tag 7, `_8k_ulaw`). Try them with:"
    )
    lines = [
        "# samples/",
        "",
        *textwrap.wrap(intro, 100),
        "",
        "    .venv/bin/kore-voice transcribe samples/*.wav",
        "",
        "| File | Format | Content | Text | Digits | Seconds |",
        "|---|---|---|---|---|---|",
    ]
    for path, fmt, seconds, sample in rows:
        lines.append(f"| `{path.name}` | {fmt} | {sample.what} | {sample.text or '(none)'} | "
                     f"{sample.digits or '(none)'} | {seconds:.2f} |")
    lines += ["", "Text is what a recognizer should hear (lower case, no punctuation); digits are the keys",
              "a DTMF detector should report, in order.", "",
              "Scripted calls for `kore-voice call` (format: `adapter/harness/call_script.py`), run against the",
              "built-in demo bot: `call_balance.yaml` (balance by key, then by voice), `call_transfer_money.yaml`",
              "(a transfer with the account number on the keypad), `call_agent.yaml` (transfer to an agent):", "",
              "    .venv/bin/kore-voice call samples/call_balance.yaml", "",
              "This file is written by make_samples.py.", ""]
    return "\n".join(lines)


def main() -> None:
    rows = []
    for sample in SAMPLES:
        for suffix, rate, encoding in FORMATS:
            path, seconds = write_sample(sample, suffix, rate, encoding)
            fmt = "16 kHz 16-bit PCM" if encoding == "pcm" else "8 kHz mu-law"
            rows.append((path, fmt, seconds, sample))
            print(f"{path.relative_to(HERE.parent)}  {seconds:.2f} s  {path.stat().st_size} bytes")
    (HERE / "README.md").write_text(readme(rows), encoding="utf-8")
    total = sum(p.stat().st_size for p in HERE.iterdir() if p.is_file())
    print(f"samples/ holds {total} bytes")


if __name__ == "__main__":
    main()
