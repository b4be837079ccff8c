"""Shared fixtures for the library tests."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, fixed-seed Generator per test: tests never share random state."""
    return np.random.default_rng(231)


@pytest.fixture
def torch():
    """PyTorch, the optional reference implementation; the test is skipped where it is absent."""
    torch = pytest.importorskip("torch")
    return torch
