"""Streaming in-band DTMF detection: keypad tones in 16-bit PCM become keys with their start times."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache

import numpy as np

from adapter.audio.errors import UnsupportedAudio
from adapter.audio.pcm import Pcm

# Keypad frequencies and layout, specs/telephony.md §8.2.
ROWS_HZ = (697.0, 770.0, 852.0, 941.0)
COLUMNS_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = "123A456B789C*0#D"

# Acceptance criteria of specs/telephony.md §8.2 (ITU-T Q.24 style), tuned with tests/audio/test_dtmf.py.
HOP_S = 0.005               # a new analysis window every 5 ms...
WINDOW_HOPS = 4             # ...20 ms long...
WINDOW_SIGMA = 1 / 6        # ...Gaussian-shaped (sigma = length/6): its spectral peak is a parabola in log power
GRID = 0.02                 # each tone is probed at f·(1 - GRID), f and f·(1 + GRID)
MAX_OFFSET = 0.025          # frequency error: accept ±1.5 %, reject ±3.5 %
MIN_TONE_POWER = 0.5 * 10 ** (-45 / 10)   # each tone at least -45 dBFS (a full-scale sine has power 0.5)
TWIST_DB = (-9.0, 5.0)      # high group minus low group over a key's windows: accept -8..+4 dB, reject -10/+6
WINDOW_TWIST_DB = (-12.0, 8.0)   # one window's twist is noisier (±1.5 dB at 15 dB S/N): a looser bound
MIN_SHARE = 0.75            # share of the window's power the two tones must carry in every hit...
STRONG_SHARE = 0.9          # ...and in MIN_STRONG of them (a key at 15 dB S/N: 0.93-1; speech seldom)
MAX_HARMONIC = 10 ** (-15 / 10)   # column tone's 2nd harmonic at most -15 dB (music, speech)
MIN_HITS = 5                # windows of one key before it counts: 40 ms tones pass, 20-25 ms bursts do not
MIN_STRONG = 3              # (after MIN_HITS, a key is judged once: see _Tone.is_dtmf)
MAX_MISSES = 6              # a run of missed windows that still belongs to the same tone: bridges a
                            # 10 ms interruption, splits at a 30 ms pause
START_LAG_S = 0.004         # the first hit window starts about this long before its tone
# A window whose loudest probes fall below this share of MIN_SHARE cannot pass (probes sit within
# 1 % of any accepted tone, where the window's response is above 0.89), so it is skipped early.
SCREEN = 0.85

LOW_BAND_HZ = (150.0, 250.0, 350.0, 450.0, 550.0)   # probes covering 100-600 Hz, below every DTMF tone
MAX_LOW_BAND = 10 ** (-18.5 / 10)  # power there, relative to the two tones: voiced speech has its pitch and
                                  # first harmonics there (-10 dB), DTMF only noise (-24 dB at 15 dB S/N)

_TONES = len(ROWS_HZ) + len(COLUMNS_HZ)
_TWIST_LIMITS = tuple(10 ** (db / 10) for db in TWIST_DB)   # as power ratios column/row
_WINDOW_TWIST_LIMITS = tuple(10 ** (db / 10) for db in WINDOW_TWIST_DB)
# Probe layout: three per tone (rows then columns), column harmonics, low band, DC.
_HARMONICS = 3 * _TONES
_LOW_BAND = slice(_HARMONICS + len(COLUMNS_HZ), _HARMONICS + len(COLUMNS_HZ) + len(LOW_BAND_HZ))
_PROBES = _LOW_BAND.stop + 1


@dataclass(frozen=True, slots=True)
class DtmfKey:
    """One keypad press: the key and when its tone began."""

    key: str        # "0"-"9", "*", "#", "A"-"D"
    start_s: float  # seconds from the start of the stream
    # when the tone stopped: known for whole buffers (detect_keys), not live; not part of equality
    end_s: float | None = field(default=None, compare=False)


class DtmfDetector:
    """Finds DTMF keys in one stream of s16le mono PCM fed in chunks of any size.

    Every 5 ms a 20 ms window is analysed by one matrix product. A window *hits* a key when one
    row and one column tone are loud enough, within ±2.5 % of nominal (located by a parabola
    through the log powers of three probes per tone), roughly within the allowed twist, carry
    most of the window's power, and the column has no strong second harmonic. Once a key has
    MIN_HITS hits it is judged once, over all of them: the twist must be within bounds and the
    band below the tones nearly empty (voiced speech keeps its pitch there). A key is reported
    once, with the start of its first hit; drop-outs up to MAX_MISSES windows are bridged.
    Windows sit on a fixed grid from the stream's first sample, so chunking does not matter.
    """

    def __init__(self, rate: int) -> None:
        if rate < 8000:
            raise UnsupportedAudio(f"DTMF detection needs audio sampled at 8000 Hz or more, not {rate} Hz")
        self.rate = rate
        self._hop = round(rate * HOP_S)
        self._length = self._hop * WINDOW_HOPS
        self._basis, self._power_weights = _analysis_basis(rate, self._length)
        self._restart()

    #: (key, tone) of every key reported, kept only for `detect_keys`, which fills in the ends.
    _spans: list[tuple[DtmfKey, _Tone]] | None = None

    def _restart(self) -> None:
        self._pending = np.zeros(0)          # samples (as floats) not yet in a whole window
        self._odd_byte = b""
        self._next_window = 0                # grid index of the next window to analyse
        self._decided: _Tone | None = None   # the latest tone judged (reported or not)
        self._candidate: _Tone | None = None # hits of a key not judged yet

    def feed(self, data: bytes) -> list[DtmfKey]:
        """Add samples; returns the keys that became certain within them."""
        data = self._odd_byte + data
        even = len(data) & ~1
        self._odd_byte = data[even:]
        samples = np.frombuffer(data, dtype="<i2", count=even // 2)
        return self._analyse(np.concatenate((self._pending, samples * (1 / 32768))))

    def flush(self) -> list[DtmfKey]:
        """End of stream: reports a tone still sounding if long enough, then starts a new stream."""
        tail = (-len(self._pending)) % self._hop + self._length - self._hop
        keys = self._analyse(np.concatenate((self._pending, np.zeros(tail))))
        self._restart()
        return keys

    def _analyse(self, buffer: np.ndarray) -> list[DtmfKey]:
        count = (len(buffer) - self._length) // self._hop + 1
        if count <= 0:
            self._pending = buffer
            return []
        # Overlapping windows as a strided view of the (contiguous) buffer, without copying.
        step = buffer.itemsize
        windows = np.ndarray((count, self._length), buffer.dtype, buffer, 0, (self._hop * step, step))
        self._pending = buffer[count * self._hop :]
        first, self._next_window = self._next_window, self._next_window + count
        hits = _hits(windows @ self._basis, (windows * windows) @ self._power_weights)
        return self._track(first, *hits) if len(hits[0]) else []

    def _track(self, first: int, *hits: np.ndarray) -> list[DtmfKey]:
        """Turns hit windows into keys: one report per tone, bridging short drop-outs."""
        found = []
        for at, key, strong, row, column, below in zip(*(array.tolist() for array in hits), strict=True):
            index = first + at
            if self._decided and self._decided.continues(key, index):
                self._decided.last, self._candidate = index, None
                continue
            if not (self._candidate and self._candidate.continues(key, index)):
                self._candidate = _Tone(key, index)
            tone = self._candidate
            tone.add(index, strong, row, column, below)
            if tone.hits >= MIN_HITS and tone.strong >= MIN_STRONG:
                # Judged once: a tone that fails stays silent to its end instead of trying again.
                if tone.is_dtmf():
                    start = max(0.0, tone.first * self._hop / self.rate + START_LAG_S)
                    found.append(DtmfKey(KEYS[key], round(start, 4)))
                    if self._spans is not None:
                        self._spans.append((found[-1], tone))
                self._decided, self._candidate = tone, None
        return found


@dataclass(slots=True)
class _Tone:
    """The hit windows of one key, from its first hit to its latest, with their powers summed."""

    key: int
    first: int
    last: int = 0
    hits: int = 0
    strong: int = 0
    row: float = 0.0        # power of the row (low-group) tone
    column: float = 0.0     # power of the column (high-group) tone
    below: float = 0.0      # power in LOW_BAND_HZ

    def continues(self, key: int, index: int) -> bool:
        return key == self.key and index - self.last <= MAX_MISSES + 1

    def add(self, index: int, strong: bool, row: float, column: float, below: float) -> None:
        self.last = index
        self.hits += 1
        self.strong += strong
        self.row += row
        self.column += column
        self.below += below

    def is_dtmf(self) -> bool:
        """Twist and low band over the whole tone: steadier than any one window's (noise averages out)."""
        return (
            _TWIST_LIMITS[0] <= self.column / self.row <= _TWIST_LIMITS[1]
            and self.below <= MAX_LOW_BAND * (self.row + self.column)
        )


def detect_keys(pcm: Pcm) -> list[DtmfKey]:
    """All keys in a whole buffer, each with the time its tone stopped."""
    detector = DtmfDetector(pcm.rate)
    detector._spans = []
    detector.feed(pcm.data)
    detector.flush()
    hop, length = detector._hop, detector._length
    return [replace(key, end_s=round(min((tone.last * hop + length) / pcm.rate, pcm.duration_s), 4))
            for key, tone in detector._spans]


@cache
def _analysis_basis(rate: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Window-weighted cos and sin columns, scaled so squared outputs are powers (a sine's A²/2).

    Columns: cos for each probe (see _PROBES), then sin for all but DC. Also returns the weights
    that give a window's total power from its squared samples. Shared, read-only, by all streams
    at one rate, so a stream's own state is a few hundred samples and two tallies.
    """
    tones = np.array(ROWS_HZ + COLUMNS_HZ)
    grid = (tones[:, None] * (1.0 + GRID * np.array([-1.0, 0.0, 1.0]))).ravel()
    probes = np.concatenate((grid, 2.0 * np.array(COLUMNS_HZ), LOW_BAND_HZ, [0.0]))
    n = np.arange(length)
    window = np.exp(-0.5 * ((n - (length - 1) / 2) / (length * WINDOW_SIGMA)) ** 2)
    phase = 2.0 * np.pi * np.outer(n, probes) / rate
    scale = np.full(probes.size, np.sqrt(2.0) / window.sum())
    scale[-1] = 1.0 / window.sum()                     # DC has no negative-frequency twin
    basis = np.concatenate((np.cos(phase) * scale, np.sin(phase[:, :-1]) * scale[:-1]), axis=1) * window[:, None]
    weights = window**2 / np.sum(window**2)
    basis.flags.writeable = weights.flags.writeable = False
    return basis, weights


def _hits(spectrum: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, ...]:
    """Windows that hit a key: positions, key indices in KEYS, whether strong, row and column
    tone powers, and the power in LOW_BAND_HZ."""
    power = spectrum[:, :_PROBES] ** 2
    power[:, :-1] += spectrum[:, _PROBES:] ** 2
    ac_power = total - power[:, -1]
    tones = power[:, : 3 * _TONES].reshape(-1, _TONES, 3)
    loudest = tones.max(axis=2)
    rows, cols = loudest[:, : len(ROWS_HZ)], loudest[:, len(ROWS_HZ) :]
    at = np.flatnonzero(rows.max(axis=1) + cols.max(axis=1) >= SCREEN * MIN_SHARE * ac_power)
    if not len(at):
        return (at,) * 6
    row, col = rows[at].argmax(axis=1), cols[at].argmax(axis=1)
    logs = np.log(np.stack((tones[at, row], tones[at, len(ROWS_HZ) + col]), axis=1) + 1e-30)
    below, centre, above = logs[..., 0], logs[..., 1], logs[..., 2]
    curve = below - 2.0 * centre + above               # < 0 at a peak
    shift = np.clip(0.5 * (below - above) / np.minimum(curve, -1e-9), -4.0, 4.0)
    peak = np.exp(centre - 0.25 * (below - above) * shift)
    row_power, column_power = peak[:, 0], peak[:, 1]
    tone_power = row_power + column_power
    ok = (
        np.all(curve < 0, axis=1)
        & np.all(np.abs(shift) <= MAX_OFFSET / GRID, axis=1)
        & (np.minimum(row_power, column_power) >= MIN_TONE_POWER)
        & (column_power >= row_power * _WINDOW_TWIST_LIMITS[0])
        & (column_power <= row_power * _WINDOW_TWIST_LIMITS[1])
        & (tone_power >= MIN_SHARE * ac_power[at])
        & (power[at, _HARMONICS + col] <= MAX_HARMONIC * column_power)
    )
    strong = tone_power >= STRONG_SHARE * ac_power[at]
    below = power[at, _LOW_BAND].sum(axis=1)
    return at[ok], (row * 4 + col)[ok], strong[ok], row_power[ok], column_power[ok], below[ok]
