"""The recognizer's thread pool reports its queue: jobs waiting and how long they waited."""

import threading

from adapter.metrics import MeteredExecutor, Metrics


def test_queue_depth_and_wait_follow_the_jobs():
    metrics = Metrics()
    sample = metrics.registry.get_sample_value
    gate = threading.Event()
    with MeteredExecutor(1, metrics) as pool:
        first = pool.submit(gate.wait)            # takes the only thread
        queued = [pool.submit(lambda n=n: n * 2) for n in range(3)]
        assert sample("kore_voice_asr_queue_depth") >= 3
        gate.set()
        assert [f.result(timeout=5) for f in queued] == [0, 2, 4] and first.result(timeout=5)
    assert sample("kore_voice_asr_queue_depth") == 0
    assert sample("kore_voice_asr_queue_wait_seconds_count") == 4
    assert sample("kore_voice_asr_queue_wait_seconds_sum") > 0
