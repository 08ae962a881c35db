"""The recognizer pool shares its workers fairly: a call at a time per worker, the longest-waiting call
first, speculative work on spare workers only, bounded waiting per call, and a call's work dropped with it.

Jobs here are plain functions that block on events, so the tests decide when each job ends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import pytest

from adapter.metrics import Metrics
from adapter.speech.recognizer_pool import (
    WORKER_NICENESS,
    RecognizerBusy,
    RecognizerPool,
    loaded_in_background,
    under_load,
)


class Jobs:
    """Blocking jobs that record the order they started in and end when the test releases them."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self._gates: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def job(self, name: str) -> Callable[[], str]:
        gate = self._gates.setdefault(name, threading.Event())

        def run() -> str:
            with self._changed:
                self.started.append(name)
                self._changed.notify_all()
            gate.wait(10)
            return name

        return run

    def release(self, name: str) -> None:
        self._gates[name].set()

    async def started_on(self, pool: RecognizerPool, call: str, name: str) -> asyncio.Task[str]:
        """`call`'s job `name`, submitted and running."""
        task = asyncio.create_task(pool.run(call, self.job(name)))
        await self.until_started(name)
        return task

    async def until_started(self, *names: str) -> None:
        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: all(n in self.started for n in names), timeout=10)
        assert await asyncio.to_thread(wait), f"{names} did not start; started: {self.started}"


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_call_holds_one_worker_however_much_it_sends_and_takes_turns_with_the_others():
    jobs = Jobs()
    pool = RecognizerPool(2)
    a1 = asyncio.create_task(pool.run("a", jobs.job("a1")))
    a2 = asyncio.create_task(pool.run("a", jobs.job("a2")))
    await jobs.until_started("a1")
    await settle()
    assert pool.running == 1 and pool.waiting == 1          # a's second job waits for its first, a worker idles
    b1 = await jobs.started_on(pool, "b", "b1")                           # b gets the idle worker at once
    c1 = asyncio.create_task(pool.run("c", jobs.job("c1")))
    await settle()
    jobs.release("a1")
    await jobs.until_started("c1")                           # a has just had a turn: c, waiting since, goes first
    jobs.release("c1")
    await jobs.until_started("a2")
    assert jobs.started == ["a1", "b1", "c1", "a2"]
    for name in ("a2", "b1"):
        jobs.release(name)
    assert await asyncio.gather(a1, a2, b1, c1) == ["a1", "a2", "b1", "c1"]
    pool.shutdown()


async def test_a_flooding_call_cannot_starve_another():
    jobs = Jobs()
    pool = RecognizerPool(1, max_waiting=3)
    first = await jobs.started_on(pool, "flood", "f0")
    flood = [asyncio.create_task(pool.run("flood", jobs.job(f"f{i}"))) for i in (1, 2, 3)]
    await settle()
    with pytest.raises(RecognizerBusy):
        await pool.run("flood", jobs.job("f4"))             # at most max_waiting waiting per call
    other = asyncio.create_task(pool.run("other", jobs.job("o1")))
    await settle()
    jobs.release("f0")
    await jobs.until_started("o1")                          # next, not after the flood's backlog
    jobs.release("o1")
    await jobs.until_started("f1")
    assert jobs.started == ["f0", "o1", "f1"]
    for name in ("f1", "f2", "f3"):
        jobs.release(name)
    await asyncio.gather(first, other, *flood)
    pool.shutdown()


async def a_guess_behind_a_busy_worker(jobs: Jobs) -> tuple[RecognizerPool, asyncio.Task, asyncio.Task]:
    """Two workers, one busy with call a's job, and call b's speculative job waiting (it would take the
    last free worker)."""
    pool = RecognizerPool(2)
    a = await jobs.started_on(pool, "a", "a")
    guess = asyncio.create_task(pool.run("b", jobs.job("guess"), speculative=True))
    await settle()
    assert jobs.started == ["a"] and pool.waiting == 1
    return pool, a, guess


async def test_speculative_work_waits_for_real_work_and_keeps_a_worker_free():
    jobs = Jobs()
    pool, a, guess = await a_guess_behind_a_busy_worker(jobs)
    jobs.release("a")
    await jobs.until_started("guess")                       # both workers free: now it runs
    c = await jobs.started_on(pool, "c", "c")                           # real work still finds a worker
    jobs.release("guess")
    jobs.release("c")
    assert await asyncio.gather(a, guess, c) == ["a", "guess", "c"]
    pool.shutdown()


async def test_a_speculative_job_promoted_waits_as_a_real_one_in_its_place():
    jobs = Jobs()
    pool, a, guess = await a_guess_behind_a_busy_worker(jobs)
    pool.promote("b")                                       # the caller has finished: it is needed now
    await jobs.until_started("guess")
    jobs.release("a")
    jobs.release("guess")
    assert await asyncio.gather(a, guess) == ["a", "guess"]
    pool.shutdown()


async def test_a_calls_waiting_jobs_are_dropped_when_it_ends():
    jobs = Jobs()
    pool = RecognizerPool(1)
    running = await jobs.started_on(pool, "ended", "running")
    waiting = [asyncio.create_task(pool.run("ended", jobs.job(f"w{i}"))) for i in range(2)]
    kept = asyncio.create_task(pool.run("other", jobs.job("kept")))
    await settle()
    assert pool.drop("ended") == 2 and pool.waiting == 1
    for task in waiting:
        with pytest.raises(asyncio.CancelledError):
            await task
    jobs.release("running")
    jobs.release("kept")
    assert await running == "running" and await kept == "kept"
    assert jobs.started == ["running", "kept"]              # the dropped jobs never ran
    pool.shutdown()


async def test_cancelling_the_wait_drops_a_job_that_has_not_started():
    jobs = Jobs()
    pool = RecognizerPool(1)
    busy = await jobs.started_on(pool, "a", "busy")
    gone = asyncio.create_task(pool.run("b", jobs.job("gone")))
    await settle()
    gone.cancel()
    await settle()
    assert pool.waiting == 0
    jobs.release("busy")
    await busy
    assert jobs.started == ["busy"]
    pool.shutdown()


async def test_a_failing_job_is_logged_with_its_call_counted_and_raised_to_its_caller(caplog):
    metrics = Metrics()
    pool = RecognizerPool(1, metrics)

    def broken() -> None:
        raise RuntimeError("decoder exploded")

    with caplog.at_level(logging.ERROR, "adapter.speech.recognizer_pool"), pytest.raises(RuntimeError):
        await pool.run("call-7", broken)
    assert any("call-7" in r.getMessage() and "decoder exploded" in r.getMessage() for r in caplog.records)
    assert metrics.registry.get_sample_value("kore_voice_asr_failures_total") == 1
    assert await pool.run("call-7", lambda: "next") == "next"   # the pool goes on
    sample = metrics.registry.get_sample_value
    assert sample("kore_voice_asr_queue_depth") == 0
    assert sample("kore_voice_asr_queue_wait_seconds_count", {"kind": "final"}) == 2
    assert sample("kore_voice_asr_job_seconds_count") == 2
    pool.shutdown()


async def test_a_job_that_starts_while_others_wait_runs_under_load():
    jobs = Jobs()
    pool = RecognizerPool(1)
    first = await jobs.started_on(pool, "a", "first")
    loaded = [asyncio.create_task(pool.run(call, under_load)) for call in ("b", "c")]
    await settle()
    jobs.release("first")
    assert await asyncio.gather(*loaded) == [True, False]   # b started with c waiting; c with nobody
    assert await first == "first" and not under_load()
    pool.shutdown()


def test_threads_an_engine_starts_while_it_loads_yield_the_cpu_to_the_event_loop():
    import os

    def load() -> tuple[int, int]:
        started: list[int] = []
        thread = threading.Thread(target=lambda: started.append(os.getpriority(os.PRIO_PROCESS,
                                                                                threading.get_native_id())))
        thread.start()
        thread.join()
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), started[0]

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert loaded_in_background(load) == (mine + WORKER_NICENESS, mine + WORKER_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine   # the caller's is untouched


async def test_an_ended_call_leaves_nothing_behind_in_the_pool():
    jobs = Jobs()
    pool = RecognizerPool(1)
    first = await jobs.started_on(pool, "ended", "first")
    waiting = asyncio.create_task(pool.run("ended", jobs.job("second")))
    other = asyncio.create_task(pool.run("other", jobs.job("other")))
    await settle()
    jobs.release("first")
    await jobs.until_started("other")                       # "ended" just had its turn: its second job waits
    pool.drop("ended")
    with pytest.raises(asyncio.CancelledError):
        await waiting
    jobs.release("other")
    assert await first == "first" and await other == "other"
    assert pool.waiting == 0 and not pool._freed            # nothing kept for a call that has gone
    pool.shutdown()
