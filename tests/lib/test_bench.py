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
    assert re.search(r"^copy bandwidth [\d.]+ GB/s", text, re.M)
    for dtype in ("float32", "float64"):
        for pass_ in ("fwd", "bwd"):  # the traffic table: MB, MFLOP, 4 times, a ratio
            row = re.search(rf"^D\s+{dtype}\s+{pass_}\s+(.*)$", text, re.M)
            numbers = [float(v) for v in row.group(1).split()]
            assert len(numbers) == 7 and all(v > 0 for v in numbers)


def test_traffic_counts_the_columns_matrix():
    # Layer D in float32: the shifted copies read cols' worth of phase images and write
    # cols (K + 1 rows over the batch's phase-image positions), the multiply reads it
    # back: three times its bytes, plus images and outputs (F = 16 rows against 76).
    from cs231n_lib.conv.gemm import _Geometry, traffic
    N, C, H, W, F, HH, WW, s, p = bench.LAYERS["D"]
    g = _Geometry((N, C, H, W), (F, C, HH, WW), s, p)
    cols = (g.K + 1) * N * g.P * 4
    t = traffic((N, C, H, W), (F, C, HH, WW), s, p, 4)
    assert 3 * cols < t["fwd"][0] < 4 * cols
    assert t["fwd"][1] == 2 * F * (g.K + 1) * N * g.P
    assert t["bwd"][1] == t["fwd"][1] + 2 * F * g.K * N * g.P


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
