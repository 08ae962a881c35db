"""The prompt cache is bounded by bytes in memory and on disk."""

import os
import threading
import time
from pathlib import Path

from adapter.speech.tts_cache import DiskCache, MemoryCache, PromptCache, cache_key


def test_memory_cache_evicts_least_recently_used_by_bytes():
    cache = MemoryCache(max_bytes=100)
    cache.put("a", b"x" * 40)
    cache.put("b", b"y" * 40)
    assert cache.get("a") == b"x" * 40          # a is now the most recent
    cache.put("c", b"z" * 40)                   # 120 bytes > 100: b goes
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None
    assert cache.size == 80 and len(cache) == 2


def test_memory_cache_replaces_and_skips_oversized_entries():
    cache = MemoryCache(max_bytes=100)
    cache.put("a", b"x" * 60)
    cache.put("a", b"x" * 10)
    assert cache.size == 10
    cache.put("huge", b"h" * 101)
    assert cache.get("huge") is None and cache.get("a") == b"x" * 10


def test_disk_cache_survives_a_new_instance_and_evicts_oldest(tmp_path: Path):
    disk = DiskCache(tmp_path, max_bytes=100)
    disk.put("old", b"o" * 50)
    past = time.time() - 100
    os.utime(tmp_path / "old.audio", (past, past))
    disk.put("new", b"n" * 40)
    assert DiskCache(tmp_path, 100).get("old") == b"o" * 50
    disk.put("newest", b"w" * 40)               # 130 > 100: the least recently used goes
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "old.audio" in names and "new.audio" not in names and "newest.audio" in names
    assert not list(tmp_path.glob("*.tmp"))


async def test_prompt_cache_promotes_disk_hits_and_counts(tmp_path: Path):
    key = cache_key("Welcome", "gmw/en-us", 165, 1.0, "wav8k")
    assert key != cache_key("Welcome", "gmw/en-us", 165, 1.0, "ulaw8k")
    await PromptCache(1000, DiskCache(tmp_path, 1000)).put(key, b"audio")
    cache = PromptCache(1000, DiskCache(tmp_path, 1000))
    assert await cache.get(key) == b"audio" and cache.memory.get(key) == b"audio"
    assert await cache.get("missing") is None
    assert (cache.hits, cache.misses) == (1, 1)


class ThreadNotingDisk(DiskCache):
    """A disk tier that notes which thread each read, write and folder rescan ran in."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        super().__init__(root, max_bytes)
        self.threads: set[int] = set()

    def get(self, key: str) -> bytes | None:
        self.threads.add(threading.get_ident())
        return super().get(key)

    def put(self, key: str, value: bytes) -> None:
        self.threads.add(threading.get_ident())
        super().put(key, value)

    def _evict(self) -> None:
        self.threads.add(threading.get_ident())
        super()._evict()


async def test_disk_reads_writes_and_rescans_run_off_the_event_loop_within_the_bound(tmp_path: Path):
    disk = ThreadNotingDisk(tmp_path, max_bytes=100)
    cache = PromptCache(1000, disk)
    for i in range(5):
        await cache.put(f"k{i}", bytes([i]) * 40)
    assert await PromptCache(1000, disk).get("k4") == bytes([4]) * 40        # a disk hit
    assert disk.threads and threading.get_ident() not in disk.threads
    assert sum(p.stat().st_size for p in tmp_path.glob("*.audio")) <= 100
