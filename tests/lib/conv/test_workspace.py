"""Scratch arrays reused across calls, and saved arrays handed back when dropped."""

import gc

import numpy as np

from cs231n_lib.conv import workspace as conv_workspace
from cs231n_lib.conv.workspace import Saved, workspace


def test_a_role_keeps_a_few_shapes_without_reallocating():
    # A batch of 64 in blocks of 11 ends with a block of 9: both shapes stay.
    a = workspace("test-role", (11, 3), np.float64)
    b = workspace("test-role", (9, 3), np.float64)
    assert workspace("test-role", (11, 3), np.float64) is a
    assert workspace("test-role", (9, 3), np.float64) is b
    assert not np.shares_memory(a, b)
    for i in range(conv_workspace.SHAPES_PER_ROLE):  # the oldest shapes go first
        workspace("test-role", (i + 1, 7), np.float64)
    assert workspace("test-role", (11, 3), np.float64) is not a


def test_zeroed_array_is_fresh_when_its_tag_changes():
    z = workspace("test-zeroed", (4,), np.float32, zeroed=True, tag=1)
    assert z.dtype == np.float32 and not z.any()
    z[0] = 5  # a caller writes the interior; the rest stays zero
    assert workspace("test-zeroed", (4,), np.float32, zeroed=True, tag=1)[0] == 5
    assert not workspace("test-zeroed", (4,), np.float32, zeroed=True, tag=2).any()


def test_saved_blocks_are_views_of_their_own_memory():
    s = Saved([(2, 3), (1, 3)], np.float32)
    assert len(s) == 2 and s[0].shape == (2, 3) and s[1].shape == (1, 3)
    s[0][...] = 1
    s[1][...] = 2
    other = Saved([(2, 3), (1, 3)], np.float32)  # alive together: separate memory
    assert not np.shares_memory(s[0], other[0])
    other[0][...] = 7
    assert (s[0] == 1).all() and (s[1] == 2).all()


def test_saved_memory_is_reused_once_dropped():
    s = Saved([(1000,)], np.float64)
    address = s[0].__array_interface__["data"][0]
    del s
    gc.collect()
    again = Saved([(10, 100)], np.float64)  # same size and dtype
    assert again[0].__array_interface__["data"][0] == address
    different = Saved([(1000,)], np.float32)
    assert different[0].__array_interface__["data"][0] != address


def test_scratch_per_thread_is_bounded(monkeypatch):
    monkeypatch.setattr(conv_workspace, "MAX_BYTES_PER_THREAD", 3000)
    conv_workspace.clear()
    a = workspace("test-a", (100,), np.float64)  # 800 bytes each
    workspace("test-b", (100,), np.float64)
    workspace("test-c", (100,), np.float64)
    workspace("test-d", (100,), np.float64)  # 3200 bytes: the oldest, a, is dropped
    assert workspace("test-a", (100,), np.float64) is not a
    assert sum(x.nbytes for x, _ in conv_workspace._local.pool.values()) <= 3000
    conv_workspace.clear()
