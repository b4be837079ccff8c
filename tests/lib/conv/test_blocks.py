"""The conv core's thread count: the cores, unless the grader (or a user) says fewer."""

import threading

import pytest

from cs231n_lib.conv import blocks


@pytest.fixture(autouse=True)
def default_threads(monkeypatch):
    monkeypatch.delenv(blocks.THREADS_VARIABLE, raising=False)
    blocks.set_num_threads(None)
    yield
    blocks.set_num_threads(None)


def test_by_default_every_available_core():
    assert blocks.workers() == blocks.available_cores()


def test_the_environment_variable_caps_the_threads(monkeypatch):
    monkeypatch.setenv(blocks.THREADS_VARIABLE, "1")
    assert blocks.workers() == 1
    seen = blocks.run_blocks(lambda s: threading.get_ident(), [slice(0, 1), slice(1, 2)])
    assert seen == [threading.get_ident()] * 2  # one thread: the caller's


def test_the_setter_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(blocks.THREADS_VARIABLE, "1")
    blocks.set_num_threads(3)
    assert blocks.workers() == 3


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_the_setter_refuses_what_is_not_a_positive_integer(bad):
    with pytest.raises(ValueError, match="positive integer"):
        blocks.set_num_threads(bad)


@pytest.mark.parametrize("bad", ["0", "two", "-1"])
def test_a_bad_environment_value_is_named(monkeypatch, bad):
    monkeypatch.setenv(blocks.THREADS_VARIABLE, bad)
    with pytest.raises(ValueError, match="CS231N_NUM_THREADS must be a positive integer"):
        blocks.workers()
