"""In-band DTMF detector against specs/telephony.md §8.2, at 8 kHz through μ-law and at 16 kHz PCM."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from dtmf_signals import (
    Press,
    add_noise,
    cadence,
    dual_tone,
    espeak,
    key_tones,
    line,
    music,
    press_sequence,
    sox_raw,
    sox_sequence,
    to_pcm,
    tone_power,
    white_noise,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.audio.dtmf import KEYS, DtmfDetector, DtmfKey, detect_keys
from adapter.audio.errors import UnsupportedAudio
from adapter.audio.pcm import Pcm

RATES = [pytest.param(8000, id="8k-ulaw"), pytest.param(16000, id="16k-pcm")]
START_TOLERANCE_S = 0.010
ALL_KEYS = list(KEYS)


def detect(signal: np.ndarray, rate: int) -> list[DtmfKey]:
    """Keys in a float signal as the line delivers it (μ-law round trip at 8 kHz)."""
    return detect_keys(line(to_pcm(signal, rate)))


def assert_keys(found: list[DtmfKey], keys: list[str], starts: list[float]) -> None:
    assert [k.key for k in found] == keys
    for key, start in zip(found, starts, strict=True):
        assert key.start_s == pytest.approx(start, abs=START_TOLERANCE_S), (key, start)


def presses(keys: list[str], **press) -> list[Press]:
    return [Press(key, **press) for key in keys]


def run_sequence(rate: int, items: list[Press], seed: int = 0, snr_db: float | None = None) -> None:
    """Every press is found once, in order, at its start; optionally under white noise `snr_db`
    below the quietest press."""
    rng = np.random.default_rng(seed)
    signal, starts = press_sequence(items, rate, rng)
    if snr_db is not None:
        signal = add_noise(signal, snr_db, min(tone_power(p) for p in items), rng)
    assert_keys(detect(signal, rate), [p.key for p in items], starts)


def nothing_in(signal: np.ndarray, rate: int) -> None:
    assert detect(signal, rate) == []


# --- §8.2 test matrix: what must be detected ------------------------------------------------

@pytest.mark.parametrize("rate", RATES)
def test_each_key_once_with_its_start(rate: int) -> None:
    items = [Press(key, on_s=0.06 + 0.01 * (i % 5), off_s=0.06) for i, key in enumerate(ALL_KEYS)]
    run_sequence(rate, items)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("on_ms", [40, 45, 60])
def test_tones_of_40_ms_and_more_are_keys(rate: int, on_ms: int) -> None:
    # off times that are not multiples of the 5 ms analysis step move each tone on the grid
    items = [Press(key, on_s=on_ms / 1000, off_s=0.0613 + 0.0007 * i) for i, key in enumerate(ALL_KEYS)]
    run_sequence(rate, items)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("on_ms", [10, 15, 20, 24])
def test_bursts_of_24_ms_or_less_are_not(rate: int, on_ms: int) -> None:
    rng = np.random.default_rng(on_ms)
    items = [Press(key, on_s=on_ms / 1000, off_s=0.0613 + 0.0007 * i) for i, key in enumerate(ALL_KEYS)]
    nothing_in(press_sequence(items, rate, rng)[0], rate)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("offset", [(0.015, 0.015), (-0.015, -0.015), (0.015, -0.015), (-0.015, 0.015)])
def test_frequency_error_of_1_5_percent_is_accepted(rate: int, offset: tuple[float, float]) -> None:
    run_sequence(rate, presses(ALL_KEYS, offset=offset))


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(
    "offset",
    [(0.035, 0.035), (-0.035, -0.035), (0.035, -0.035), (0.035, 0.0), (-0.035, 0.0), (0.0, 0.035), (0.0, -0.035)],
)
def test_frequency_error_of_3_5_percent_is_rejected(rate: int, offset: tuple[float, float]) -> None:
    nothing_in(press_sequence(presses(ALL_KEYS, offset=offset), rate, np.random.default_rng(1))[0], rate)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("twist_db", [4.0, -8.0])
def test_twist_within_limits_is_accepted(rate: int, twist_db: float) -> None:
    run_sequence(rate, presses(ALL_KEYS, twist_db=twist_db))


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("twist_db", [6.0, -10.0])
def test_twist_beyond_limits_is_rejected(rate: int, twist_db: float) -> None:
    nothing_in(press_sequence(presses(ALL_KEYS, twist_db=twist_db), rate, np.random.default_rng(2))[0], rate)


@pytest.mark.parametrize("rate", RATES)
def test_keys_at_minus_25_dbfs_per_tone(rate: int) -> None:
    run_sequence(rate, presses(ALL_KEYS, level_dbfs=-25.0))


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("level_dbfs", [-10.0, -25.0])
def test_keys_in_white_noise_at_15_db_snr(rate: int, level_dbfs: float) -> None:
    run_sequence(rate, presses(ALL_KEYS, level_dbfs=level_dbfs), seed=3, snr_db=15.0)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("twist_db", [4.0, -8.0])
def test_extreme_twist_with_frequency_error_in_noise(rate: int, twist_db: float) -> None:
    items = presses(ALL_KEYS, level_dbfs=-20.0, twist_db=twist_db, offset=(0.015, -0.015))
    run_sequence(rate, items, seed=4, snr_db=15.0)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("gap_ms", [40, 50, 80])
def test_same_key_after_a_pause_counts_twice(rate: int, gap_ms: int) -> None:
    for key in "15#D":
        run_sequence(rate, [Press(key, on_s=0.07, off_s=gap_ms / 1000), Press(key, on_s=0.07)])


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("gap_ms", [5, 10])
def test_short_interruption_is_one_key(rate: int, gap_ms: int) -> None:
    for key in "15#D":
        rng = np.random.default_rng(5)
        signal, starts = press_sequence([Press(key, on_s=0.07, off_s=gap_ms / 1000), Press(key, on_s=0.07)], rate, rng)
        assert_keys(detect(signal, rate), [key], starts[:1])


@pytest.mark.parametrize("rate", RATES)
def test_interruption_of_a_running_oscillator_is_one_key(rate: int) -> None:
    signal = dual_tone(Press("8", on_s=0.3), rate, np.random.default_rng(6))
    signal[round(0.15 * rate) : round(0.16 * rate)] = 0.0
    assert [k.key for k in detect(signal, rate)] == ["8"]


@pytest.mark.parametrize("rate", RATES)
def test_long_press_is_one_key(rate: int) -> None:
    run_sequence(rate, [Press("0", on_s=2.0), Press("0", on_s=1.0)], seed=7, snr_db=15.0)


# --- sox-made tones (specs/telephony.md §10) ------------------------------------------------

@pytest.mark.parametrize("rate", RATES)
def test_sox_made_sequence(rate: int) -> None:
    items = [Press(key, on_s=0.05 + 0.01 * (i % 4), off_s=0.05) for i, key in enumerate(ALL_KEYS)]
    audio, starts = sox_sequence(items, rate)
    assert_keys(detect_keys(line(audio)), ALL_KEYS, starts)


@pytest.mark.parametrize("rate", RATES)
def test_sox_made_twist_and_offsets(rate: int) -> None:
    items = [
        Press("1", level_dbfs=-6.0, twist_db=4.0),      # §10: "gain -10" low, "gain -6" high
        Press("5", level_dbfs=-10.0, twist_db=-8.0),
        Press("9", level_dbfs=-25.0, offset=(0.015, 0.015)),
        Press("#", offset=(-0.015, -0.015)),
    ]
    audio, starts = sox_sequence(items, rate)
    assert_keys(detect_keys(line(audio)), ["1", "5", "9", "#"], starts)


@pytest.mark.parametrize("rate", RATES)
def test_sox_made_rejects(rate: int) -> None:
    items = [
        Press("1", on_s=0.02),
        Press("2", twist_db=6.0),
        Press("3", twist_db=-10.0),
        Press("4", offset=(0.035, 0.035)),
        Press("6", offset=(-0.035, -0.035)),
    ]
    audio, _ = sox_sequence(items, rate)
    assert detect_keys(line(audio)) == []
    dial = sox_raw(["synth", "2", "sine", "350", "sine", "440", "remix", "1v0.2,2v0.2"], rate)
    assert detect_keys(line(dial)) == []


@pytest.mark.skipif(shutil.which("multimon-ng") is None, reason="multimon-ng is not installed")
def test_multimon_ng_agrees_on_the_sox_test_file(tmp_path: Path) -> None:
    """Sanity check of the test audio itself with an independent decoder (not a Q.24 oracle, §10)."""
    items = presses(list("159#0*D"), on_s=0.08, off_s=0.08)
    audio, _ = sox_sequence(items, 8000)
    raw = tmp_path / "keys.raw"
    raw.write_bytes(line(audio).data)
    resampled = tmp_path / "keys22050.raw"
    fmt = ["-b", "16", "-c", "1", "-e", "signed-integer", "-t", "raw"]
    subprocess.run(["sox", "-r", "8000", *fmt, str(raw), "-r", "22050", *fmt, str(resampled)], check=True)
    out = subprocess.run(
        ["multimon-ng", "-q", "-t", "raw", "-a", "DTMF", str(resampled)], check=True, capture_output=True, text=True
    ).stdout
    heard = [row.split(":")[1].strip() for row in out.splitlines() if row.startswith("DTMF:")]
    assert heard == list("159#0*D") == [k.key for k in detect_keys(line(audio))]


# --- what must never be a key ---------------------------------------------------------------

def note(semitones: int) -> float:
    """Equal-tempered pitch, semitones from A4."""
    return 440.0 * 2 ** (semitones / 12)


def _negatives(rate: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(8)
    signals = {
        "1000 Hz": cadence(1.0, 1.0, 0.0, (1000.0,), -6.0, rate),
        "dial tone 350+440": cadence(3.0, 3.0, 0.0, (350.0, 440.0), -13.0, rate),
        "ringback 440+480": cadence(6.0, 2.0, 4.0, (440.0, 480.0), -13.0, rate),
        "busy 480+620": cadence(3.0, 0.5, 0.5, (480.0, 620.0), -13.0, rate),
        "white noise": white_noise(3.0, rate, -10.0, rng),
        "two rows": cadence(0.5, 0.5, 0.0, (697.0, 770.0), -10.0, rate),
        "two columns": cadence(0.5, 0.5, 0.0, (1209.0, 1336.0), -10.0, rate),
    }
    for hz in sorted({f for key in KEYS for f in key_tones(key)}):
        signals[f"{hz:.0f} Hz alone"] = cadence(0.5, 0.5, 0.0, (hz,), -6.0, rate)
    for base in (-5, 0, 4, 9):
        scale = [[note(base + step)] for step in (0, 2, 4, 5, 7, 9, 11, 12)]
        chords = [[note(base + s) for s in chord] for chord in ([0, 4, 7], [5, 9, 12], [7, 11, 14], [0, 7], [3, 10])]
        signals[f"melody and chords on {note(base):.0f} Hz"] = music(rate, scale + chords)
    for low in ROW_NOTES:
        for high in COLUMN_NOTES:
            signals[f"notes with harmonics near a key {low:.0f}+{high:.0f} Hz"] = music(rate, [[low, high]], 0.4)
    return signals


# Notes of the equal-tempered scale within 2 % of DTMF tones: G5, A5, E6, F#6, A#6 (tones of instruments).
ROW_NOTES = (698.46, 783.99, 932.33)
COLUMN_NOTES = (1318.51, 1479.98, 1661.22)


@pytest.mark.parametrize("rate", RATES)
def test_no_keys_in_tones_noise_and_music(rate: int) -> None:
    found = {name: detect(signal, rate) for name, signal in _negatives(rate).items()}
    assert {name: keys for name, keys in found.items() if keys} == {}


PHRASES = (
    "press one for sales, press two for support, or press zero for an operator",
    "Please enter your account number, followed by the pound key.",
    "one two three four five six seven eight nine zero star pound hash",
    "my number is five five five, one two one two, extension nine nine eight",
    "welcome to the automated banking service. to hear your balance say balance or press one",
    "Thank you for calling. Your call is important to us. Please hold. Eeeee, ooooh, mmmm.",
)
# Common voices, then variants (with speed and pitch) whose vowels came closest to keypad tones
# while the detector was tuned: two strong harmonics near a row and a column tone.
VOICES = (
    ("en",), ("en-us",), ("en+f3",), ("en+f5",), ("en-gb-scotland",), ("en+m3", "-s", "120"),
    ("en-us+f2", "-p", "80"), ("en+klatt",), ("en-us+Annie",), ("en+croak",), ("en+whisper",),
    ("en-gb-scotland+Mario", "-s", "119", "-p", "80"), ("en-029+belinda", "-s", "173", "-p", "70"),
    ("en-gb-scotland+robert", "-s", "156", "-p", "57"), ("en-us-nyc+Alicia", "-s", "180", "-p", "76"),
    ("en-gb-x-gbcwmd+zac", "-s", "190", "-p", "80"), ("en-gb-x-rp+zac", "-s", "161", "-p", "65"),
)


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dtmf-speech")


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("voice", VOICES, ids=lambda v: "".join(v))
def test_no_keys_in_speech(rate: int, voice: tuple[str, ...], speech_dir: Path) -> None:
    for phrase in PHRASES:
        audio = espeak(phrase, voice[0], rate, speech_dir, *voice[1:])
        assert detect_keys(audio) == [], phrase


@pytest.mark.parametrize("rate", RATES)
def test_keys_after_a_spoken_prompt(rate: int, speech_dir: Path) -> None:
    prompt = espeak("Please enter your four digit pin, then press pound.", "en-us", rate, speech_dir)
    signal, starts = press_sequence(presses(list("2580#"), on_s=0.09, off_s=0.11), rate, np.random.default_rng(9))
    keys = detect_keys(prompt + line(to_pcm(signal, rate)))
    assert_keys(keys, list("2580#"), [prompt.duration_s + s for s in starts])


# --- streaming -------------------------------------------------------------------------------

def _stream_sample(rate: int) -> Pcm:
    rng = np.random.default_rng(10)
    items = [Press(k, on_s=0.04 + 0.013 * i, off_s=0.04 + 0.011 * i) for i, k in enumerate("1 1 9 # 0 0 *".split())]
    signal, _ = press_sequence(items, rate, rng)
    return line(to_pcm(add_noise(signal, 20.0, tone_power(items[0]), rng), rate))


STREAMS = {rate: _stream_sample(rate) for rate in (8000, 16000)}


@pytest.mark.parametrize("rate", RATES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_chunking_gives_the_same_keys(rate: int, data: st.DataObject) -> None:
    audio = STREAMS[rate]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(audio.data)), max_size=40)))
    detector = DtmfDetector(rate)
    found = []
    for begin, end in zip([0, *cuts], [*cuts, len(audio.data)], strict=True):
        found += detector.feed(audio.data[begin:end])
    found += detector.flush()
    assert found == detect_keys(audio)
    assert [k.key for k in found] == "1 1 9 # 0 0 *".split()


@pytest.mark.parametrize("rate", RATES)
def test_key_is_reported_while_its_tone_still_sounds(rate: int) -> None:
    signal, starts = press_sequence([Press("7", on_s=1.0)], rate, np.random.default_rng(11))
    data = line(to_pcm(signal, rate)).data
    detector = DtmfDetector(rate)
    chunk = 2 * rate // 50                                  # 20 ms
    reported_at = next(i for i in range(0, len(data), chunk) if detector.feed(data[i : i + chunk]))
    assert reported_at / 2 / rate < starts[0] + 0.1
    assert detector.flush() == []


@pytest.mark.parametrize("rate", RATES)
def test_flush_reports_a_tone_at_the_very_end(rate: int) -> None:
    signal, starts = press_sequence([Press("4", on_s=0.045, off_s=0.0)], rate, np.random.default_rng(12))
    data = line(to_pcm(signal, rate)).data
    detector = DtmfDetector(rate)
    assert_keys(detector.feed(data) + detector.flush(), ["4"], starts)
    # flush ended that stream: the next one starts at time zero again
    assert_keys(detector.feed(data) + detector.flush(), ["4"], starts)


@pytest.mark.parametrize("rate", [11025, 22050, 44100, 48000])
def test_other_sample_rates(rate: int) -> None:
    run_sequence(rate, presses(list("147*2580369#ABCD"), on_s=0.05, off_s=0.05))


def test_rates_below_8000_hz_are_refused() -> None:
    with pytest.raises(UnsupportedAudio, match="8000 Hz"):
        DtmfDetector(6000)


# --- random in-spec sequences ----------------------------------------------------------------

press_strategy = st.builds(
    Press,
    key=st.sampled_from(ALL_KEYS),
    on_s=st.floats(0.04, 0.15),
    off_s=st.floats(0.04, 0.15),
    level_dbfs=st.floats(-25.0, -6.0),
    twist_db=st.floats(-8.0, 4.0),
    offset=st.tuples(st.floats(-0.015, 0.015), st.floats(-0.015, 0.015)),
)


@pytest.mark.parametrize("rate", RATES)
@settings(max_examples=60, deadline=None)
@given(items=st.lists(press_strategy, min_size=1, max_size=8), seed=st.integers(0, 2**32 - 1))
def test_random_in_spec_sequences_are_exact(rate: int, items: list[Press], seed: int) -> None:
    run_sequence(rate, items, seed=seed)


@pytest.mark.parametrize("rate", RATES)
@settings(max_examples=30, deadline=None)
@given(items=st.lists(press_strategy, min_size=1, max_size=6), seed=st.integers(0, 2**32 - 1))
def test_random_in_spec_sequences_in_noise_are_exact(rate: int, items: list[Press], seed: int) -> None:
    run_sequence(rate, items, seed=seed, snr_db=15.0)


def test_whole_buffer_keys_carry_when_their_tone_stopped():
    rate = 8000
    t = np.arange(int(0.12 * rate)) / rate
    tone = 0.3 * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t))   # "5", 120 ms
    gap = np.zeros(int(0.3 * rate))
    keys = detect_keys(Pcm.from_array(np.concatenate([gap, tone, gap]), rate))
    assert [k.key for k in keys] == ["5"]
    assert abs(keys[0].start_s - 0.3) < 0.015 and abs(keys[0].end_s - 0.42) < 0.03
