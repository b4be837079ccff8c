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
        for pass_ in ("fwd", "bwd"):  # the traffic table: MB and ms in+out, MB, MFLOP, 4 times, a ratio
            row = re.search(rf"^D\s+{dtype}\s+{pass_}\s+(.*)$", text, re.M)
            numbers = [float(v) for v in row.group(1).split()]
            assert len(numbers) == 9 and all(v > 0 for v in numbers)
    assert "goals (f+b/torch)" not in text  # no torch, nothing to hold the goals against


def test_traffic_counts_the_columns_matrix():
    # Layer D in float32: the shifted copies write cols (K + 1 = 76 rows over the batch's
    # phase-image positions), the multiply reads it back: twice its bytes, plus the phase
    # buffer (12 rows) and the product (16 rows), each written and read, and x and out.
    from cs231n_lib.conv.gemm import _Geometry, traffic
    N, C, H, W, F, HH, WW, s, p = bench.LAYERS["D"]
    g = _Geometry((N, C, H, W), (F, C, HH, WW), s, p)
    cols = (g.K + 1) * N * g.P * 4
    t = {name: (sum(b for _, b, _ in steps), sum(f for _, _, f in steps))  # (bytes, flops)
         for name, steps in traffic((N, C, H, W), (F, C, HH, WW), s, p, 4).items()}
    assert 2.5 * cols < t["fwd"][0] < 3.5 * cols  # (2 * (76 + 12 + 16) + about 22) / 76 rows
    assert t["fwd"][1] == 2 * F * (g.K + 1) * N * g.P
    assert t["bwd"][1] == t["fwd"][1] + 2 * F * g.K * N * g.P


def test_the_floor_takes_each_step_at_its_own_limit():
    # Each step at the longer of its bytes at the bandwidth and its flops at the peak: at
    # least the larger of the pass's two totals, at most their sum.
    row = {"layer": "D", "dtype": "float64", "method": "gemm"}
    for least, nbytes, flops, t_copy, t_mm, floor in bench.bounds(row, 20.0, 40.0).values():
        assert least < nbytes and max(t_copy, t_mm) < floor < t_copy + t_mm


def test_in_out_bytes_are_the_layers_arrays_once():
    # Layer D in float64: x (64, 3, 31, 31), w (16, 3, 5, 5), b (16,), out (64, 16, 16, 16).
    x, w, b, out = 64 * 3 * 31 * 31, 16 * 3 * 5 * 5, 16, 64 * 16 * 16 * 16
    assert bench.in_out_bytes("D", 8) == {"fwd": 8 * (x + w + b + out),
                                          "bwd": 8 * (out + x + w + x + w + b)}


def test_goals_name_the_ratio_the_floor_would_give():
    row = {"layer": "D", "dtype": "float64", "method": "gemm", "fwd_bwd_vs_torch": 0.8,
           "torch_fwd_bwd_ms": 10.0}
    bandwidth, peak = 20.0, 40.0  # GB/s, GFLOP/s
    floor = sum(b[-1] for b in bench.bounds(row, bandwidth, peak).values())
    (line,) = bench.goal_rows([row], bandwidth, peak)
    assert "goal <= 0.50: NOT met" in line and f"it would be {floor / 10.0:.2f}" in line
    (line,) = bench.goal_rows([{**row, "fwd_bwd_vs_torch": 0.4}], bandwidth, peak)
    assert "goal <= 0.50: met" in line
    assert bench.goal_rows([{**row, "layer": "B"}], bandwidth, peak) == []  # no goal for B


def test_cpu_time_needs_one_thread():
    with pytest.raises(SystemExit, match="--cpu-time needs --threads 1"):
        bench.main(["--layers", "D", "--repeat", "1", "--no-torch", "--cpu-time"])


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
