"""The synthesis worker process: real espeak-ng speech, and recovery from a crash or a hang."""

import os
import signal

import numpy as np
import pytest

from adapter.speech.tts_worker import TtsError, TtsWorker


@pytest.fixture(scope="module")
def worker():
    w = TtsWorker(timeout_s=1.5)
    w.start()
    yield w
    w.close()


def test_synthesizes_speech_at_espeaks_rate(worker: TtsWorker):
    pcm = worker.synthesize("Your balance is forty two dollars.", "en-us", 165, 1.0)
    assert pcm.rate == 22050
    assert 1.2 < pcm.duration_s < 4.0
    assert np.abs(pcm.samples()).max() > 5000          # speech, not silence


def test_rate_and_volume_change_the_audio(worker: TtsWorker):
    normal = worker.synthesize("testing one two three", "en-us", 165, 1.0)
    fast = worker.synthesize("testing one two three", "en-us", 330, 1.0)
    quiet = worker.synthesize("testing one two three", "en-us", 165, 0.2)
    assert fast.duration_s < 0.75 * normal.duration_s
    assert np.abs(quiet.samples()).max() < 0.5 * np.abs(normal.samples()).max()


def test_lists_espeak_voices(worker: TtsWorker):
    ids = {v.id for v in worker.voices()}
    assert "gmw/en-us" in ids and len(ids) > 50


def test_a_killed_worker_is_restarted_and_the_request_served(worker: TtsWorker):
    before = worker.restarts
    os.kill(worker.pid, signal.SIGKILL)
    pcm = worker.synthesize("still here", "en-us", 165, 1.0)
    assert pcm.duration_s > 0.3
    assert worker.restarts == before + 1


def test_a_hung_worker_times_out_and_is_replaced(worker: TtsWorker):
    before = worker.restarts
    os.kill(worker.pid, signal.SIGSTOP)
    with pytest.raises(TtsError, match="took longer than 1.5 s; the worker was restarted"):
        worker.synthesize("are you there", "en-us", 165, 1.0)
    assert worker.restarts == before + 1
    assert worker.synthesize("back again", "en-us", 165, 1.0).duration_s > 0.3

