"""bench/load.py really run, briefly: a soak of a few REST calls against a real `kore-voice serve` on a real
redis-server, whose report counts every call and turn, no error or lost turn, and Redis traffic per call."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

LOAD = Path(__file__).resolve().parents[2] / "bench" / "load.py"


def test_a_short_soak_reports_calls_turns_errors_lost_turns_memory_and_redis_commands():
    run = subprocess.run([sys.executable, str(LOAD), "--soak", "3", "--warm-up", "1", "--engine", "pocketsphinx"],
                         capture_output=True, text=True, timeout=110)
    out = run.stdout
    assert run.returncode == 0, run.stderr[-2000:]
    assert "calls 3, turns 6 in" in out, out
    assert "errors 0 (goal 0); lost turns 0 (goal 0; the bot received 6); wrong answers 0" in out, out
    assert "call states left in Redis 0 (goal 0)" in out, out
    assert re.search(r"RSS [\d.]+ -> [\d.]+ MB: drift [-+][\d.]+ MB", out), out
    per_call = re.search(r"Redis commands per call ([\d.]+)", out)
    assert per_call and 1 <= float(per_call[1]) <= 100, out  # it uses Redis, a handful of commands a call
