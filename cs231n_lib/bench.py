"""Benchmark of the vectorized convolution: `python -m cs231n_lib.bench` (or `make bench`).

For four layers (A-D below) and two dtypes it prints forward and backward time, GFLOP/s,
the share of the matmul peak measured in the same run, the speed-up over the naive loops
(timed on a few images and scaled to the batch) and, when PyTorch is importable, the ratio
of our time to PyTorch's. For the layers on the GEMM path a second table shows what bounds
them: the bytes each pass moves and the flops of its multiplies, at the copy bandwidth and
the matmul peak measured in the same run, beside the time the pass took. All candidates
are timed round-robin, so a busy machine slows them alike, each timed call right after
untimed ones of the same candidate (see _round_robin), and each figure is the median of
--repeat runs. With --cpu-time (and --threads 1) the figures are CPU seconds, which other
processes on a shared machine disturb far less than wall-clock time.

The layers' goals (f+b/torch at most GOALS) are checked at the end of each dtype's table,
beside the ratio this algorithm could reach at best: at its floor, where each of its
steps, one after another, takes only the longer of its bytes at the copy bandwidth and its
multiplies at the matmul peak.

OpenBLAS reads OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE when it loads; set to a smaller core
or cache than the machine has, they roughly halve matmul speed. The bench reports them,
and --clean-env re-runs it with both removed (for this process only; nothing else changes).
"""

import argparse
import os
import sys
import time

BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

LAYERS = {
    # name: (N, C, H, W, F, HH, WW, stride, pad)
    "A": (64, 3, 32, 32, 32, 3, 3, 1, 1),
    "B": (64, 32, 16, 16, 64, 3, 3, 1, 1),
    "C": (128, 64, 8, 8, 128, 3, 3, 1, 1),
    # The issue's D is 32x32, but (32 + 2*2 - 5) is odd: stride 2 does not tile it, which
    # conv_forward rejects (PyTorch silently drops the last padded row and column). 31x31
    # gives the same 16x16 output, the same FLOPs, and both libraries run the same problem.
    "D": (64, 3, 31, 31, 16, 5, 5, 2, 2),
}

# Goals for our forward + backward time over PyTorch's, per (layer, dtype).
GOALS = {("D", "float32"): 1.5, ("D", "float64"): 0.5, ("A", "float64"): 0.5}

# What times a call: wall-clock time, or with --cpu-time this process's CPU time.
clock = time.perf_counter


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m cs231n_lib.bench", description=__doc__.split("\n")[0])
    p.add_argument("--layers", default="ABCD", help="which of A B C D to run (default ABCD)")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--repeat", type=int, default=15, help="runs per figure; the median is shown")
    p.add_argument("--naive-n", type=int, default=2,
                   help="images for the naive loops, whose time is scaled to the batch")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--threads", type=int, default=None,
                   help="cores for everyone (BLAS, our blocks, torch); default: all. "
                        "--threads 1 compares work per core, which a busy machine disturbs least")
    p.add_argument("--cpu-time", action="store_true",
                   help="time CPU seconds instead of wall-clock ones (needs --threads 1, as CPU "
                        "time adds up the threads): steadier on a machine other work shares")
    p.add_argument("--clean-env", action="store_true",
                   help=f"re-run with {' and '.join(BLAS_ENV)} removed from the environment")
    return p.parse_args(argv)


def _reexec_without_blas_env(argv):
    env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV}
    env["CS231N_BENCH_CLEANED"] = ",".join(f"{k}={os.environ[k]}" for k in BLAS_ENV
                                           if k in os.environ)
    args = [a for a in argv if a != "--clean-env"]
    os.execve(sys.executable, [sys.executable, "-m", "cs231n_lib.bench", *args], env)


# Untimed calls of a candidate before each timed one, for at least this long. PyTorch's
# OpenMP threads (and BLAS's) keep spinning after a parallel region, waiting for more
# work, and whatever runs next shares the cores with them. Measured on bench layer D
# (our forward pass, 1.7 ms alone): 5.3 ms right after a PyTorch call, 2.8 ms after one
# untimed call, back to 1.75 ms 20 ms after PyTorch finished.
SETTLE_S = 0.025


def _round_robin(fns, repeat, settle=True):
    """Time every callable `repeat` times round-robin: {name: array of seconds per round}.

    One round runs each callable in turn, so the times of one round saw the same machine;
    on a shared machine whose speed drifts (steal time), ratios taken within a round are
    steadier than ratios of medians. With `settle`, each timed call comes after untimed
    calls of the same callable lasting SETTLE_S: they outlast what the previous candidate
    left running, and the timed call sees what a training loop calling the layer again
    and again sees.
    """
    import numpy as np
    for f in fns.values():  # warm up: workspaces, BLAS threads, page faults
        f()
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, f in fns.items():
            if settle:
                until = time.perf_counter() + SETTLE_S
                f()
                while time.perf_counter() < until:
                    f()
            t = clock()
            f()
            times[name].append(clock() - t)
    return {name: np.array(t) for name, t in times.items()}


def _median_times(fns, repeat, settle=True):
    """Median seconds per name over `repeat` round-robin runs."""
    import numpy as np
    return {name: float(np.median(t)) for name, t in _round_robin(fns, repeat, settle).items()}


def _blas_report():
    lines = []
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["BLAS: threadpoolctl not installed, kernel unknown"]
    import numpy  # noqa: F401  (loads the BLAS so threadpoolctl can see it)
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            lines.append(f"BLAS: {info.get('internal_api')} {info.get('version')}, kernel "
                         f"{info.get('architecture')}, {info.get('num_threads')} threads "
                         f"({os.path.basename(info.get('filepath', ''))})")
    return lines or ["BLAS: none found by threadpoolctl"]


def matmul_peak(dtype, repeat, n=1024):
    """GFLOP/s of the fastest of `repeat` (n x n) @ (n x n) products: a peak is the best
    the machine did, and on a shared machine a median can catch a slow stretch."""
    import numpy as np
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
    t = _round_robin({"mm": lambda: a @ b}, repeat)["mm"].min()
    return 2 * n**3 / t / 1e9


COPY_BYTES = 16 * 2**20  # as large as a pass's arrays: beyond the caches of one core


def copy_bandwidth(threads, repeat):
    """GB/s of np.copyto, reads plus writes, on `threads` threads side by side (each its
    own share of COPY_BYTES), the fastest of `repeat` runs, as for the matmul peak."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    parts = [(np.ones(COPY_BYTES // 8 // threads), np.empty(COPY_BYTES // 8 // threads))
             for _ in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        def copy():
            list(pool.map(lambda ab: np.copyto(ab[1], ab[0]), parts))
        t = _round_robin({"copy": copy}, repeat)["copy"].min()
    return 2 * COPY_BYTES / t / 1e9


def in_out_bytes(layer, itemsize):
    """{pass: bytes} that any implementation must move: each pass reads its inputs and
    writes its results at least once (forward: x, w, b in, out out; backward: dout, x, w
    in, dx, dw, db out)."""
    N, C, H, W, F, HH, WW, s, p = LAYERS[layer]
    H_out, W_out = (H + 2 * p - HH) // s + 1, (W + 2 * p - WW) // s + 1
    x, w, out = N * C * H * W, F * C * HH * WW, N * F * H_out * W_out
    return {"fwd": (x + w + F + out) * itemsize, "bwd": (out + 2 * x + 2 * w + F) * itemsize}


def bounds(row, bandwidth, peak):
    """For a GEMM-path row, per pass: (bytes any implementation moves, bytes this algorithm
    moves, its flops, those bytes' ms at the copy bandwidth, the flops' ms at the matmul
    peak, the floor).

    The floor: NumPy runs the pass's steps one after another, and a step takes at least
    its bytes at the copy bandwidth and at least its flops at the matmul peak, so the
    pass takes at least the sum over its steps of the larger of the two.
    """
    from .conv.gemm import traffic
    N, C, H, W, F, HH, WW, s, p = LAYERS[row["layer"]]
    itemsize = 4 if row["dtype"] == "float32" else 8
    least = in_out_bytes(row["layer"], itemsize)
    found = {}
    for name, steps in traffic((N, C, H, W), (F, C, HH, WW), s, p, itemsize).items():
        nbytes, flops = sum(b for _, b, _ in steps), sum(f for _, _, f in steps)
        floor = sum(max(b / bandwidth, f / peak) for _, b, f in steps) / 1e6
        found[name] = (least[name], nbytes, flops, nbytes / bandwidth / 1e6, flops / peak / 1e6,
                       floor)
    return found


def traffic_rows(rows, bandwidth, peak):
    """The second table: for each GEMM-path row, each pass's bytes and flops, the time
    they take at the copy bandwidth and at the matmul peak, and the time measured."""
    lines = []
    for r in rows:
        if r["method"] != "gemm":
            continue
        for name, (least, nbytes, flops, t_copy, t_mm, floor) in bounds(r, bandwidth, peak).items():
            t = r[f"{name}_ms"]
            lines.append(f"{r['layer'] + ' ':<5} {r['dtype']:<7} {name:<4} {least / 1e6:7.1f} "
                         f"{least / bandwidth / 1e6:7.2f} {nbytes / 1e6:8.1f} {flops / 1e6:7.1f} "
                         f"{t_copy:8.2f} {t_mm:8.2f} {floor:8.2f} {t:8.2f} {t / floor:7.1f}")
    return lines


def goal_rows(rows, bandwidth, peak):
    """Each layer with a goal: f+b/torch measured, the goal, and f+b/torch at this
    algorithm's floor (both passes at their floors): above the goal, no tuning of this
    algorithm reaches it."""
    lines = []
    for r in rows:
        goal = GOALS.get((r["layer"], r["dtype"]))
        if goal is None or "fwd_bwd_vs_torch" not in r:
            continue
        line = (f"{r['layer'] + ' ':<5} {r['dtype']:<7} f+b/torch {r['fwd_bwd_vs_torch']:5.2f}, "
                f"goal <= {goal:.2f}: {'met' if r['fwd_bwd_vs_torch'] <= goal else 'NOT met'}")
        if r["method"] == "gemm":
            floor = sum(b[-1] for b in bounds(r, bandwidth, peak).values())
            best = floor / r["torch_fwd_bwd_ms"]
            line += (f"; at this algorithm's floor ({floor:.2f} ms against torch's "
                     f"{r['torch_fwd_bwd_ms']:.2f} ms) it would be {best:.2f}"
                     f"{' (the goal is below the floor)' if best > goal else ''}")
        lines.append(line)
    return lines


def bench_layer(name, dtype, args, torch):
    import numpy as np

    from .conv import conv_backward, conv_backward_naive, conv_forward, conv_forward_naive
    N, C, H, W, F, HH, WW, s, p = LAYERS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((F, C, HH, WW)) / np.sqrt(C * HH * WW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    cp = {"stride": s, "pad": p}
    out, cache = conv_forward(x, w, b, cp)
    dout = rng.standard_normal(out.shape).astype(dtype)
    Ho, Wo = out.shape[2:]
    flops = 2 * N * F * Ho * Wo * C * HH * WW  # forward; backward is twice this

    fns = {"fwd": lambda: conv_forward(x, w, b, cp), "bwd": lambda: conv_backward(dout, cache)}
    if torch is not None:
        tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
        tx = torch.tensor(x, dtype=tdtype, requires_grad=True)
        tw = torch.tensor(w, dtype=tdtype, requires_grad=True)
        tb = torch.tensor(b, dtype=tdtype, requires_grad=True)
        tdout = torch.tensor(dout, dtype=tdtype)

        def torch_fwd():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p)

        def torch_fwd_bwd():
            tx.grad = tw.grad = tb.grad = None
            torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p).backward(tdout)
        fns["torch_fwd"] = torch_fwd
        fns["torch_fwd_bwd"] = torch_fwd_bwd
    rounds = _round_robin(fns, args.repeat)
    t = {name: float(np.median(v)) for name, v in rounds.items()}

    n = min(args.naive_n, N)
    xn, doutn = x[:n], dout[:n]

    def naive():
        _, c = conv_forward_naive(xn, w, b, cp)
        conv_backward_naive(doutn, c)
    t_naive = _median_times({"naive": naive}, max(1, min(3, args.repeat)), settle=False)["naive"] * N / n

    row = {"layer": name, "dtype": np.dtype(dtype).name, "method": cache[0],
           "fwd_ms": t["fwd"] * 1e3, "bwd_ms": t["bwd"] * 1e3,
           "fwd_gflops": flops / t["fwd"] / 1e9,
           "fwd_bwd_gflops": 3 * flops / (t["fwd"] + t["bwd"]) / 1e9,
           "x_naive": t_naive / (t["fwd"] + t["bwd"])}
    if torch is not None:
        row["torch_fwd_ms"] = t["torch_fwd"] * 1e3
        row["torch_fwd_bwd_ms"] = t["torch_fwd_bwd"] * 1e3
        # Median of the ratios within each round (see _round_robin).
        row["fwd_vs_torch"] = float(np.median(rounds["fwd"] / rounds["torch_fwd"]))
        row["fwd_bwd_vs_torch"] = float(np.median(
            (rounds["fwd"] + rounds["bwd"]) / rounds["torch_fwd_bwd"]))
    return row


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.repeat < 1 or args.naive_n < 1 or (args.threads is not None and args.threads < 1):
        raise SystemExit("--repeat, --naive-n and --threads must be at least 1")
    if args.cpu_time and args.threads != 1:
        raise SystemExit("--cpu-time needs --threads 1: CPU time adds up the threads")
    global clock
    clock = time.process_time if args.cpu_time else time.perf_counter
    present = [k for k in BLAS_ENV if k in os.environ]
    if args.clean_env and present:
        _reexec_without_blas_env(argv)  # does not return

    import numpy as np

    from .conv import blocks
    threads = args.threads or blocks.workers()
    if args.threads:
        blocks.set_num_threads(args.threads)
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(args.threads, user_api="blas")
        except ImportError:
            raise SystemExit("--threads needs threadpoolctl to set the BLAS threads") from None
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(threads)
        except ImportError:
            torch = None

    print("cs231n_lib.conv benchmark")
    if torch is not None:
        torch_note = f", torch {torch.__version__}"
    elif args.no_torch:
        torch_note = ", torch skipped (--no-torch)"
    else:
        torch_note = ", torch not importable (no torch columns)"
    print(f"numpy {np.__version__}{torch_note}")
    for line in _blas_report():
        print(line)
    if present:
        print("WARNING: " + ", ".join(f"{k}={os.environ[k]}" for k in present) +
              " is set: OpenBLAS may use a slower kernel or smaller blocks. "
              "Re-run with --clean-env to unset them for the benchmark only.")
    cleaned = os.environ.get("CS231N_BENCH_CLEANED")
    if cleaned:
        print(f"(re-run with {cleaned} removed from the environment)")
    print(f"{threads} thread(s) each for BLAS, our batch blocks and torch; "
          f"{'CPU' if args.cpu_time else 'wall-clock'} time, median of "
          f"{args.repeat} runs, all candidates timed round-robin, each call timed after "
          f"{SETTLE_S * 1e3:.0f} ms of untimed calls of the same candidate (ratios to torch: the "
          f"median of the ratios within each round); "
          f"naive timed on {args.naive_n} images and scaled")
    try:
        print(f"load average before the run: {os.getloadavg()[0]:.2f} "
              f"on {os.cpu_count()} CPUs")
    except OSError:
        pass

    bandwidth = copy_bandwidth(threads, args.repeat)
    print(f"copy bandwidth {bandwidth:.1f} GB/s (np.copyto of {COPY_BYTES >> 20} MiB on "
          f"{threads} thread(s), reads + writes, fastest run)")

    dtypes = [getattr(np, d.strip()) for d in args.dtypes.split(",") if d.strip()]
    header = (f"{'layer':<5} {'dtype':<7} {'method':<8} {'fwd ms':>7} {'bwd ms':>7} "
              f"{'fwd GF/s':>8} {'%peak':>6} {'f+b GF/s':>8} {'%peak':>6} {'x naive':>8}")
    if torch is not None:
        header += f" {'torch f':>8} {'torch f+b':>9} {'f/torch':>7} {'f+b/torch':>9}"
    for name in args.layers:
        if name not in LAYERS:
            raise SystemExit(f"unknown layer {name!r}; choose from {''.join(LAYERS)}")
    for dtype in dtypes:
        # Before and after the layers: on a shared machine either can hit a slow stretch.
        before = matmul_peak(dtype, args.repeat)
        rows = [bench_layer(name, dtype, args, torch) for name in args.layers]
        peak = max(before, matmul_peak(dtype, args.repeat))
        print(f"\n{np.dtype(dtype).name}: matmul peak {peak:.1f} GFLOP/s (1024x1024 @ 1024x1024, "
              "fastest run, before or after the layers)")
        print(header)
        for r in rows:
            line = (f"{r['layer'] + ' ':<5} {r['dtype']:<7} {r['method']:<8} {r['fwd_ms']:7.2f} "
                    f"{r['bwd_ms']:7.2f} {r['fwd_gflops']:8.1f} {100 * r['fwd_gflops'] / peak:5.0f}% "
                    f"{r['fwd_bwd_gflops']:8.1f} {100 * r['fwd_bwd_gflops'] / peak:5.0f}% "
                    f"{r['x_naive']:8.0f}")
            if torch is not None:
                line += (f" {r['torch_fwd_ms']:8.2f} {r['torch_fwd_bwd_ms']:9.2f} "
                         f"{r['fwd_vs_torch']:7.2f} {r['fwd_bwd_vs_torch']:9.2f}")
            print(line, flush=True)
        bound = traffic_rows(rows, bandwidth, peak)
        if bound:
            print(f"\n{np.dtype(dtype).name}, GEMM path: what each pass has to move and multiply")
            print(f"{'layer':<5} {'dtype':<7} {'pass':<4} {'MB i+o':>7} {'i+o ms':>7} "
                  f"{'MB moved':>8} {'MFLOP':>7} {'copy ms':>8} {'mm ms':>8} {'floor ms':>8} "
                  f"{'ms':>8} {'x floor':>7}")
            for line in bound:
                print(line, flush=True)
        goals = goal_rows(rows, bandwidth, peak)
        if goals:
            print(f"\n{np.dtype(dtype).name}, goals (f+b/torch)")
            for line in goals:
                print(line, flush=True)
    print("\nlayers: " + "; ".join(
        f"{k}: N{v[0]} C{v[1]} {v[2]}x{v[3]} F{v[4]} {v[5]}x{v[6]} stride {v[7]} pad {v[8]}"
        for k, v in LAYERS.items()))
    legend = ("GF/s count the direct convolution's 2*N*F*H_out*W_out*C*HH*WW flops (x3 for "
              "forward + backward), so Winograd, which does fewer, can pass 100% of the peak; "
              "x naive: naive loops' time / ours (forward + backward)")
    if torch is not None:
        legend += "; f/torch, f+b/torch: our time / PyTorch's (below 1 means faster)"
    legend += ("\nMB i+o: the pass's inputs and results, which any implementation reads or "
               "writes at least once; i+o ms: those at the copy bandwidth. MB moved: every "
               "array each NumPy step of this algorithm reads or writes, counted once "
               "(cs231n_lib.conv.gemm.traffic; BLAS's own packing copies come on top); "
               "MFLOP: its matrix multiplies, cropped positions included; copy ms, mm ms: "
               "those at the copy bandwidth and at the matmul peak; floor ms: this algorithm's "
               "least time, its steps one after another, each the longer of its bytes at the "
               "copy bandwidth and its flops at the matmul peak; ms: measured; x floor: ms / "
               "floor ms")
    print(legend)


if __name__ == "__main__":
    main()
