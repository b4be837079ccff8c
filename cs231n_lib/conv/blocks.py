"""Running a layer over blocks of the batch, on every core.

NumPy's elementwise operations use one core, and BLAS splits each matrix multiply across
cores, which costs a synchronisation per call, and the fast convolutions make many calls.
So the batch is cut into blocks, one or more per core, and the blocks go to a pool of
threads, each running its whole block (transforms and multiplies) with single-threaded
BLAS: NumPy releases the GIL inside its loops, so the blocks run side by side.
Results do not depend on the number of threads: blocks are fixed by the sizes alone and
partial sums are added in block order.
"""

import contextlib
import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from cs231n_lib.layers import check_positive_int

# A block's scratch arrays stay below this; smaller blocks cost more Python overhead.
BLOCK_BYTES = 4 << 20
# Blocks are cut for this many workers at least, whatever the machine has.
MIN_BLOCKS = 2
# Below this much scratch a layer is one block: handing work to threads costs ~0.1 ms.
SPLIT_BYTES = 1 << 20

_executor = None
_executor_pid = None
_blas = None
_blas_lock = threading.Lock()
_blas_users = 0
_blas_restore = None


# A grader running one submission per core sets this to 1, so that N submissions side by
# side never ask for N x cores threads; set_num_threads does the same from Python.
THREADS_VARIABLE = "CS231N_NUM_THREADS"
_num_threads = None


def available_cores():
    """The cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def set_num_threads(n):
    """Run the conv core's blocks on at most n threads (None: back to the default)."""
    global _num_threads
    if n is not None:
        check_positive_int(n, "n", "set_num_threads")
    _num_threads = n


def workers():
    """Threads to use: set_num_threads's, else $CS231N_NUM_THREADS, else the available cores."""
    if _num_threads is not None:
        return _num_threads
    setting = os.environ.get(THREADS_VARIABLE, "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ValueError(f"{THREADS_VARIABLE} must be a positive integer, got {setting!r}")
        return int(setting)
    return available_cores()


def blocks(n, per_image_bytes, block_bytes=None):
    """Slices covering range(n), of near-equal size, each below block_bytes (default
    BLOCK_BYTES) if possible.

    Their number is a multiple of MIN_BLOCKS (when n allows), so that two workers finish
    together; a layer with less than SPLIT_BYTES of scratch in all is a single block.
    """
    if n * per_image_bytes < SPLIT_BYTES:
        return [slice(0, n)]
    count = math.ceil(n * per_image_bytes / (block_bytes or BLOCK_BYTES))
    count = min(n, MIN_BLOCKS * math.ceil(count / MIN_BLOCKS))
    step = math.ceil(n / max(1, count))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def owns_threads(layer):
    """Decorator: `layer` runs with single-threaded BLAS from start to end.

    Its blocks are what runs on every core. A BLAS call of its own on several threads
    (a filter transform, say) would wake BLAS's worker threads, which then spin for a
    while after the call, taking a core from the blocks that follow and from whatever
    runs next; measured: bench layer C took 1.5x as long, and PyTorch right after it 1.8x.
    """
    @functools.wraps(layer)
    def run(*args, **kwargs):
        with _single_threaded_blas():
            return layer(*args, **kwargs)
    return run


def _blas_controller():
    """threadpoolctl's handle on the BLAS libraries, or False without threadpoolctl."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
            _blas = ThreadpoolController().select(user_api="blas")
        except ImportError:
            _blas = False
    return _blas


@contextlib.contextmanager
def _single_threaded_blas():
    """BLAS on one thread while any block runs (needs threadpoolctl; else a no-op).

    Counted, so that calls from several threads at once restore the setting only when
    the last one leaves.
    """
    global _blas_users, _blas_restore
    with _blas_lock:
        _blas_controller()
        if _blas and _blas_users == 0:
            _blas_restore = _blas.limit(limits=1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas and _blas_users == 0:
                _blas_restore.restore_original_limits()


def run_blocks(fn, slices):
    """[fn(s) for s in slices], the blocks spread over the cores; results in order."""
    global _executor, _executor_pid
    n_workers = min(workers(), len(slices))
    # Without threadpoolctl BLAS keeps its own threads, and blocks on threads of ours too
    # would ask for twice as many threads as cores: then BLAS alone runs in parallel.
    if n_workers == 1 or not _blas_controller():
        return [fn(s) for s in slices]
    # A forked child inherits the pool object but not its threads: make a new one.
    if _executor is None or _executor_pid != os.getpid() or _executor._max_workers != workers():
        _executor = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="cs231n-conv")
        _executor_pid = os.getpid()
    with _single_threaded_blas():
        return list(_executor.map(fn, slices))
