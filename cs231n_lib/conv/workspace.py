"""Reusable memory for the fast convolution paths.

A fresh multi-megabyte array costs a page fault per 4 KiB page the first time it is
written, which for a small layer is a sizeable share of the whole convolution. So:
- workspace(): scratch arrays that live only inside one call (GEMM results, gradient
  columns, padded copies), kept per thread and handed out again on the next call.
  Nothing that leaves a call, as an output or inside a cache, comes from here;
- Saved: arrays that do leave the call inside a layer's cache (what the forward pass
  keeps for the backward pass), whose memory is reused only after that cache is dropped.
"""

import math
import threading

import numpy as np

_local = threading.local()
SHAPES_PER_ROLE = 4
# Scratch kept per thread; past this the least recently used arrays are dropped.
MAX_BYTES_PER_THREAD = 256 * 2**20


def workspace(role, shape, dtype, zeroed=False, tag=None):
    """A scratch array of `shape` and `dtype` for `role`, reused across calls.

    role names one use site, so two arrays alive at the same time never share memory.
    A few shapes are kept per role and dtype, because the blocks of one batch differ in
    size (64 images in blocks of 11 end with a block of 9) and a network has layers of
    several sizes. zeroed=True promises zeros only in a freshly made array: a caller that
    writes the same interior on every call (the padding stays zero) passes what decides
    that interior as `tag`, and gets a fresh zeroed array whenever the tag changes.
    """
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}  # (role, dtype, shape) -> (array, tag), by last use
    key = (role, np.dtype(dtype).str, tuple(shape))
    entry = pool.pop(key, None)
    if entry is None or entry[1] != tag:
        entry = None  # free the old one before making the new one
        same_role = [k for k in pool if k[:2] == key[:2]]
        for k in same_role[:max(0, len(same_role) + 1 - SHAPES_PER_ROLE)]:
            del pool[k]
        entry = ((np.zeros if zeroed else np.empty)(key[2], dtype), tag)
        # Only a new array can take the pool past its cap.
        held = sum(a.nbytes for a, _ in pool.values())
        while pool and held + entry[0].nbytes > MAX_BYTES_PER_THREAD:
            oldest = next(iter(pool))  # dropping it only ends the pool's hold on it
            held -= pool.pop(oldest)[0].nbytes
    pool[key] = entry
    return entry[0]


def clear():
    """Drop every scratch array (frees the memory; the next call allocates afresh)."""
    getattr(_local, "pool", {}).clear()
    with _free_lock:
        _free.clear()


# Memory of dropped Saved objects, by (numbers, dtype), for the next forward pass.
_free = {}
_free_lock = threading.Lock()
MAX_FREE_PER_SIZE = 8  # a network with several layers of one shape saves several at once
MAX_FREE_BYTES = 256 * 2**20


def _take(key):
    with _free_lock:
        stack = _free.get(key)
        if stack:
            return stack.pop()
    return np.empty(key[0], dtype=key[1])


def _give(key, buf):
    with _free_lock:
        held = sum(b.nbytes for stack in _free.values() for b in stack)
        stack = _free.setdefault(key, [])
        if len(stack) < MAX_FREE_PER_SIZE and held + buf.nbytes <= MAX_FREE_BYTES:
            stack.append(buf)


class Saved:
    """Arrays that outlive the code that fills them, one per batch block: what a forward
    pass saves for its backward pass, or the blocks' partial sums.

    Unlike workspace() arrays they are not tied to one use site, and may sit in a layer's
    cache; their memory is handed back for reuse when this object is dropped, since
    a fresh multi-megabyte array costs a page fault per 4 KiB page the first time it is
    written (measured: a sixth of bench layer C's forward pass). saved[i] is block i's
    array, a view made on demand, so nothing but this object holds the memory between
    a forward and a backward call.
    """

    def __init__(self, shapes, dtype):
        self._shapes = [tuple(s) for s in shapes]
        sizes = [math.prod(s) for s in self._shapes]
        self._offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        self._key = (self._offsets[-1], np.dtype(dtype).str)
        self._buf = _take(self._key)

    def __len__(self):
        return len(self._shapes)

    def __getitem__(self, i):
        return self._buf[self._offsets[i]:self._offsets[i + 1]].reshape(self._shapes[i])

    def __del__(self):
        try:
            _give(self._key, self._buf)
        except Exception:  # interpreter shutting down: nothing left to reuse it
            pass
