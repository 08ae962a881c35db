"""Rendered prompts kept by size: a byte-bounded memory LRU in front of an optional disk tier.

Prompt audio varies from 5 kB (a μ-law "yes") to megabytes (a long WAV menu), so the bound is
bytes, not entries. The disk tier (reads, writes and the folder rescan that keeps its bound) runs in
a worker thread: a slow disk must not stall every other call on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path


def cache_key(*parts: object) -> str:
    """A stable key for everything that changes the audio (text, voice, rate, volume, format)."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


class MemoryCache:
    """Least recently used entries are evicted once the total size passes `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return  # one entry larger than the whole cache would evict everything for nothing
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= len(old)
            self._items[key] = value
            self.size += len(value)
            while self.size > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self.size -= len(evicted)


class DiskCache:
    """Files named by key under `root`, oldest (by access time) removed past `max_bytes`."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.audio"

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        os.utime(path)  # mark as recently used for eviction
        return data

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        path = self._path(key)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(value)
        tmp.replace(path)  # atomic: readers never see half a file
        with self._lock:
            self._evict()

    def _evict(self) -> None:
        entries = []
        for path in self.root.glob("*.audio"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size


class PromptCache:
    """Memory first (on the loop: no I/O), then disk in a worker thread; a disk hit is promoted to memory."""

    def __init__(self, memory_bytes: int, disk: DiskCache | None = None) -> None:
        self.memory = MemoryCache(memory_bytes)
        self.disk = disk
        self.hits = 0
        self.misses = 0

    async def get(self, key: str) -> bytes | None:
        value = self.memory.get(key)
        if value is None and self.disk is not None:
            value = await asyncio.to_thread(self.disk.get, key)
            if value is not None:
                self.memory.put(key, value)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    async def put(self, key: str, value: bytes) -> None:
        self.memory.put(key, value)
        if self.disk is not None:
            await asyncio.to_thread(self.disk.put, key, value)
