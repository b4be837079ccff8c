"""Reusable scratch arrays for the fast convolution paths.

A fresh multi-megabyte array costs a page fault per 4 KiB page the first time it is
written, which for a small layer is a sizeable share of the whole convolution. Scratch
arrays that live only inside one call (GEMM results, gradient columns, padded copies)
are therefore kept here and handed out again. Nothing that leaves a call, as an output or
inside a cache, ever comes from here.
"""

import threading

import numpy as np

_local = threading.local()


def workspace(role, shape, dtype, zeroed=False, tag=None):
    """A scratch array of `shape` and `dtype` for `role`, reused across calls.

    role names one use site, so two arrays alive at the same time never share memory;
    one array is kept per role and dtype. zeroed=True promises zeros only in a freshly
    made array: a caller that writes the same interior on every call (the padding stays
    zero) passes what decides that interior as `tag`, and gets a fresh zeroed array
    whenever the tag or the shape changes.
    """
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    key = (role, np.dtype(dtype).str)
    buf = pool.get(key)
    if buf is None or buf[0].shape != tuple(shape) or buf[1] != tag:
        pool.pop(key, None)  # free the old one before making the new one
        buf = ((np.zeros if zeroed else np.empty)(shape, dtype), tag)
        pool[key] = buf
    return buf[0]


def clear():
    """Drop every scratch array (frees the memory; the next call allocates afresh)."""
    getattr(_local, "pool", {}).clear()
