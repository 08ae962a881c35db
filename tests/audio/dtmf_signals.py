"""Test signals for the DTMF detector: keypad tones, telephone tones, noise, music and speech.

Numpy builds exact tones; sox and espeak-ng build independent ones (specs/telephony.md §10).
Levels are dBFS of a sine's peak: 0 dBFS is a full-scale sine.
"""

from __future__ import annotations

import audioop
import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapter.audio.dtmf import COLUMNS_HZ, KEYS, ROWS_HZ
from adapter.audio.pcm import Pcm


def key_tones(key: str) -> tuple[float, float]:
    """(low-group Hz, high-group Hz) of a keypad key."""
    index = KEYS.index(key)
    return ROWS_HZ[index // 4], COLUMNS_HZ[index % 4]


def amplitude(dbfs: float) -> float:
    return 10.0 ** (dbfs / 20.0)


@dataclass(frozen=True)
class Press:
    """One key press as sent: its tone, then silence (or whatever the background holds)."""

    key: str
    on_s: float = 0.08
    off_s: float = 0.08
    level_dbfs: float = -10.0          # level of the louder tone
    twist_db: float = 0.0              # high group minus low group
    offset: tuple[float, float] = (0.0, 0.0)   # relative frequency error of (low, high)


def dual_tone(press: Press, rate: int, rng: np.random.Generator) -> np.ndarray:
    """The two sines of one press (random phases), as floats in -1..1."""
    low_hz, high_hz = key_tones(press.key)
    louder = amplitude(press.level_dbfs)
    quieter = louder * amplitude(-abs(press.twist_db))
    low_amp, high_amp = (quieter, louder) if press.twist_db > 0 else (louder, quieter)
    t = np.arange(round(press.on_s * rate)) / rate
    phases = rng.uniform(0, 2 * np.pi, 2)
    return (
        low_amp * np.sin(2 * np.pi * low_hz * (1 + press.offset[0]) * t + phases[0])
        + high_amp * np.sin(2 * np.pi * high_hz * (1 + press.offset[1]) * t + phases[1])
    )


def press_sequence(
    presses: list[Press], rate: int, rng: np.random.Generator, lead_s: float = 0.1
) -> tuple[np.ndarray, list[float]]:
    """Silence, then each press and its pause; returns the signal and each tone's true start."""
    parts, starts, at = [np.zeros(round(lead_s * rate))], [], round(lead_s * rate)
    for press in presses:
        tone = dual_tone(press, rate, rng)
        starts.append(at / rate)
        parts += [tone, np.zeros(round(press.off_s * rate))]
        at += len(tone) + round(press.off_s * rate)
    return np.concatenate(parts), starts


def tone_power(press: Press) -> float:
    """Power of a press's two sines together (a sine of amplitude A has power A²/2)."""
    return amplitude(press.level_dbfs) ** 2 / 2 * (1 + 10 ** (-abs(press.twist_db) / 10))


def white_noise(seconds: float, rate: int, dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power equals that of a sine at `dbfs`."""
    return rng.normal(0.0, amplitude(dbfs) / np.sqrt(2), round(seconds * rate))


def add_noise(signal: np.ndarray, snr_db: float, tone_power: float, rng: np.random.Generator) -> np.ndarray:
    """`signal` plus white noise `snr_db` below `tone_power` (the power of the tones alone)."""
    return signal + rng.normal(0.0, np.sqrt(tone_power / 10 ** (snr_db / 10)), signal.size)


def cadence(seconds: float, on_s: float, off_s: float, freqs: tuple[float, ...], dbfs: float, rate: int) -> np.ndarray:
    """A call-progress tone (dial, ringback, busy): summed sines switched on and off."""
    t = np.arange(round(seconds * rate)) / rate
    tone = sum(amplitude(dbfs) * np.sin(2 * np.pi * f * t) for f in freqs)
    return tone * ((t % (on_s + off_s)) < on_s)


def harmonic_note(hz: float, seconds: float, rate: int, harmonics: int = 6) -> np.ndarray:
    """A plucked-string-like note: harmonics at 1/k amplitude, fast attack, exponential decay."""
    t = np.arange(round(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, harmonics + 1) if hz * k < rate / 2)
    return wave * np.minimum(1.0, t / 0.01) * np.exp(-t / (seconds * 0.7))


def music(rate: int, notes: list[list[float]], note_s: float = 0.25, dbfs: float = -6.0) -> np.ndarray:
    """Chords (lists of Hz) played one after another, normalised to a peak of `dbfs`."""
    out = np.concatenate([sum(harmonic_note(hz, note_s, rate) for hz in chord) for chord in notes])
    return out * amplitude(dbfs) / np.abs(out).max()


def to_pcm(signal: np.ndarray, rate: int) -> Pcm:
    return Pcm.from_array(signal, rate)


def ulaw_round_trip(pcm: Pcm) -> Pcm:
    """What a G.711 μ-law phone line delivers: encode, then decode (audioop is bit-exact with ours)."""
    return Pcm(audioop.ulaw2lin(audioop.lin2ulaw(pcm.data, 2), 2), pcm.rate)


def line(pcm: Pcm) -> Pcm:
    """8 kHz audio goes through μ-law as on a phone line; other rates stay linear PCM."""
    return ulaw_round_trip(pcm) if pcm.rate == 8000 else pcm


def sox_raw(args: list[str], rate: int) -> Pcm:
    """Run `sox -n <raw s16le mono at rate> - <effects>` and return its output."""
    fmt = ["-r", str(rate), "-b", "16", "-c", "1", "-e", "signed-integer", "-t", "raw"]
    out = subprocess.run(["sox", "-n", *fmt, "-", *args], check=True, capture_output=True).stdout
    return Pcm(out, rate)


def sox_press(press: Press, rate: int) -> Pcm:
    """One press made by sox as §10 shows: each tone synthesised with its gain, then mixed, then a gap."""
    low_hz, high_hz = key_tones(press.key)
    louder = press.level_dbfs
    quieter = louder - abs(press.twist_db)
    low_db, high_db = (quieter, louder) if press.twist_db > 0 else (louder, quieter)
    tone = sox_raw(
        ["synth", f"{press.on_s}",
         "sine", f"{low_hz * (1 + press.offset[0]):.3f}", "sine", f"{high_hz * (1 + press.offset[1]):.3f}",
         "remix", f"1v{amplitude(low_db):.6f},2v{amplitude(high_db):.6f}"],
        rate,
    )
    return tone + sox_raw(["trim", "0", f"{press.off_s}"], rate)


def sox_sequence(presses: list[Press], rate: int, lead_s: float = 0.1) -> tuple[Pcm, list[float]]:
    audio, starts = sox_raw(["trim", "0", f"{lead_s}"], rate), []
    for press in presses:
        starts.append(audio.duration_s)
        audio = audio + sox_press(press, rate)
    return audio, starts


def sox_convert(wav: Path, rate: int, ulaw: bool) -> Pcm:
    """Resample a WAV with sox; at 8 kHz optionally through real μ-law bytes, decoded back."""
    fmt = ["-r", str(rate), "-c", "1", "-t", "raw"]
    encoding = ["-e", "mu-law"] if ulaw else ["-b", "16", "-e", "signed-integer"]
    out = subprocess.run(["sox", str(wav), *fmt, *encoding, "-"], check=True, capture_output=True).stdout
    return Pcm(audioop.ulaw2lin(out, 2) if ulaw else out, rate)


def espeak(text: str, voice: str, rate: int, folder: Path, *options: str) -> Pcm:
    """espeak-ng saying `text` with `voice` (and e.g. "-s", "180"), converted by sox to `rate`.

    At 8 kHz the audio goes through real μ-law bytes, as a phone line would carry it.
    """
    wav = folder / f"speech-{hashlib.sha1(repr((text, voice, options)).encode()).hexdigest()[:12]}.wav"
    if not wav.exists():
        subprocess.run(["espeak-ng", "-v", voice, *options, "-w", str(wav), text], check=True, capture_output=True)
    return sox_convert(wav, rate, ulaw=rate == 8000)
