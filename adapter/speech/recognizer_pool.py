"""The recognizer's work for every call of the process, shared fairly between the calls.

Decoding is the costliest thing the service does (Whisper: about half a CPU second an utterance), so one
busy caller must not make the others wait. Jobs run on `workers` threads (the recognizer releases the
GIL, or waits on worker processes when it does not), and they are chosen on the event loop:

- a call runs one job at a time, so however fast a caller sends audio it holds at most one worker;
- of the calls with work waiting, the one that has waited longest goes first: a job waits from when
  it came or from when its call's previous job ended, whichever is later, so a call with a backlog
  takes turns with the others instead of going first with all of it;
- speculative jobs (a decode started at a short pause, in case the caller has finished) run only
  when no real job waits and another worker stays free for one, so they use idle time only;
- a call may have only `max_waiting` jobs waiting (`RecognizerBusy` beyond), and `drop(call)` cancels
  the jobs it still has waiting: the work of a call ends with the call.

A job that starts while others wait runs "under load" (`under_load()` in its thread): an engine may then
trade a little accuracy for speed (Whisper's shorter encoder window), since every job it finishes sooner
is a caller answered sooner.

The engine is loaded at a lower CPU priority (`loaded_in_background`), so the decoding threads it starts
inherit it: when every core is busy, the event loop that paces every call's outgoing audio gets a CPU
before another decode does.

A job that raises is logged with its call and counted (`kore_voice_asr_failures_total`); the error goes
back to whoever awaited the job, which treats it as nothing heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


_job = threading.local()


def under_load() -> bool:
    """In a pool's worker: whether other jobs were waiting when this one started."""
    return getattr(_job, "under_load", False)


#: how much lower the recognizer's threads run than the event loop's (Linux nice, per thread)
WORKER_NICENESS = 10


def loaded_in_background(load: Callable[..., T], *args: Any) -> T:
    """`load(*args)` (blocking) on a thread of its own at nice `WORKER_NICENESS`: the threads and worker
    processes an engine starts while it loads inherit that priority (where it cannot be set, as is)."""

    def lowered() -> T:
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
        return load(*args)

    with ThreadPoolExecutor(1, thread_name_prefix="asr-load") as loader:
        return loader.submit(lowered).result()


def run_as(loaded: bool, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in this thread, `under_load()` answering `loaded` meanwhile (a worker process uses it
    for the job it was handed)."""
    _job.under_load = loaded
    try:
        return fn(*args)
    finally:
        _job.under_load = False


class RecognizerBusy(Exception):
    """A call asked for more recognizer work than it may have waiting."""


class PoolMetrics(Protocol):
    """What the pool reports (adapter.metrics.Metrics has these)."""

    def asr_waiting(self, depth: int) -> None: ...

    def asr_started(self, waited_s: float, speculative: bool) -> None: ...

    def asr_finished(self, seconds: float, failed: bool) -> None: ...


class _NoMetrics:
    def asr_waiting(self, depth: int) -> None:
        pass

    def asr_started(self, waited_s: float, speculative: bool) -> None:
        pass

    def asr_finished(self, seconds: float, failed: bool) -> None:
        pass


@dataclass(eq=False)
class _Job:
    call: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    speculative: bool
    queued: float
    order: int
    future: asyncio.Future[Any] = field(repr=False)



class RecognizerPool:
    """Runs recognizer calls for every call of the process (see the module docstring)."""

    def __init__(self, workers: int, metrics: PoolMetrics | None = None, max_waiting: int = 4) -> None:
        if workers < 1:
            raise ValueError(f"the recognizer needs at least one worker, got {workers}")
        self.workers = workers
        self.max_waiting = max_waiting
        self._metrics = metrics or _NoMetrics()
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="asr")
        self._waiting: list[_Job] = []
        self._busy_calls: set[str] = set()
        self._freed: dict[str, float] = {}  # when each busy-lately call's last job ended
        self._running = 0
        self._order = itertools.count()
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return self._running

    async def run(self, call: str, fn: Callable[..., T], *args: Any, speculative: bool = False) -> T:
        """`fn(*args)` on a worker when `call`'s turn comes. Cancelling the await drops the job if it
        has not started (a started one runs on; its result is dropped).

        Raises:
            RecognizerBusy: `call` already has `max_waiting` jobs waiting.
            RuntimeError: the pool is shut down.
        """
        if self._closed:
            raise RuntimeError("the recognizer pool is shut down")
        if sum(job.call == call for job in self._waiting) >= self.max_waiting:
            raise RecognizerBusy(f"call {call} has {self.max_waiting} recognizer jobs waiting already")
        loop = asyncio.get_running_loop()
        job = _Job(call, fn, args, speculative, time.monotonic(), next(self._order), loop.create_future())
        self._waiting.append(job)
        self._metrics.asr_waiting(len(self._waiting))
        self._dispatch()
        try:
            return await job.future
        except asyncio.CancelledError:
            self._forget(job)
            raise

    def promote(self, call: str) -> None:
        """`call`'s waiting speculative jobs are needed after all (the caller has finished): they wait
        as real jobs from now on, in their place by when they came."""
        for job in self._waiting:
            if job.call == call:
                job.speculative = False
        self._dispatch()

    def drop(self, call: str) -> int:
        """Cancel `call`'s waiting jobs (its running one finishes unheard); how many were dropped."""
        dropped = [job for job in self._waiting if job.call == call]
        for job in dropped:
            self._forget(job)
        self._freed.pop(call, None)
        return len(dropped)

    def shutdown(self) -> None:
        """Cancel everything waiting; running jobs finish in their threads."""
        self._closed = True
        for job in list(self._waiting):
            self._forget(job)
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _forget(self, job: _Job) -> None:
        if job in self._waiting:
            self._waiting.remove(job)
            self._metrics.asr_waiting(len(self._waiting))
        if not job.future.done():
            job.future.cancel()

    def _next(self) -> _Job | None:
        """The job to start now, if any (see the module docstring for the order)."""
        free = self.workers - self._running
        ready = [job for job in self._waiting if job.call not in self._busy_calls]
        if free <= 0 or not ready:
            return None
        job = min(ready, key=lambda j: (j.speculative, max(j.queued, self._freed.get(j.call, 0.0)), j.order))
        if job.speculative:
            real_waiting = any(not j.speculative for j in self._waiting)
            spare = free > 1 or self.workers == 1
            if real_waiting or not spare:
                return None
        return job

    def _dispatch(self) -> None:
        while (job := self._next()) is not None:
            self._waiting.remove(job)
            self._metrics.asr_waiting(len(self._waiting))
            self._busy_calls.add(job.call)
            self._running += 1
            self._metrics.asr_started(time.monotonic() - job.queued, job.speculative)
            task = asyncio.create_task(self._execute(job), name=f"asr job of {job.call}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _execute(self, job: _Job) -> None:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        failed = False
        try:
            work = functools.partial(run_as, bool(self._waiting), job.fn, *job.args)
            result = await loop.run_in_executor(self._threads, work)
        except Exception as exc:  # the recognizer failed: the caller hears nothing, the service goes on
            failed = True
            log.error("call %s: the recognizer failed: %s: %s", job.call, type(exc).__name__, exc, exc_info=exc)
            if not job.future.done():
                job.future.set_exception(exc)
        else:
            if not job.future.done():
                job.future.set_result(result)
        finally:
            self._metrics.asr_finished(time.monotonic() - started, failed)
            self._running -= 1
            self._busy_calls.discard(job.call)
            if any(j.call == job.call for j in self._waiting):
                self._freed[job.call] = time.monotonic()
            else:
                self._freed.pop(job.call, None)  # nothing waiting: nothing to remember
            if not self._closed:
                self._dispatch()
