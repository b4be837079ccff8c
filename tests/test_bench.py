"""`python -m cs231n_lib.bench` runs and prints its table; it is timed by hand, not here."""

import re

import pytest

from cs231n_lib import bench


def test_prints_a_row_per_layer_and_dtype(capsys):
    bench.main(["--layers", "D", "--dtypes", "float32,float64", "--repeat", "1",
                "--naive-n", "1", "--no-torch"])
    text = capsys.readouterr().out
    assert re.search(r"^BLAS: ", text, re.M)
    for dtype in ("float32", "float64"):
        assert re.search(rf"^{dtype}: matmul peak [\d.]+ GFLOP/s", text, re.M)
        row = re.search(rf"^D\s+{dtype}\s+gemm\s+(.*)$", text, re.M)
        numbers = [float(v) for v in row.group(1).replace("%", "").split()]
        assert len(numbers) == 7 and all(v > 0 for v in numbers)  # ms, GF/s, %peak, x naive
    assert "torch skipped (--no-torch)" in text and "f+b/torch" not in text


def test_round_robin_times_every_candidate_each_round(monkeypatch):
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    monkeypatch.setattr(bench, "SETTLE_S", 0)  # settle with a single untimed call
    rounds = bench._round_robin(fns, 3)
    # One warm-up each, then per round each candidate twice in a row (settle, timed).
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 3
    assert {k: len(v) for k, v in rounds.items()} == {"a": 3, "b": 3}
    calls.clear()
    bench._round_robin(fns, 2, settle=False)
    assert calls == ["a", "b"] + ["a", "b"] * 2


def test_unknown_layer_is_refused():
    with pytest.raises(SystemExit, match="unknown layer 'E'"):
        bench.main(["--layers", "E", "--dtypes", "float64", "--repeat", "1", "--no-torch"])
