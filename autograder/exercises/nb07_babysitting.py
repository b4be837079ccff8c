"""Notebook 07: the random search in log space (the library has no function for it).

The reference is the notebook's own solution cell (``notebook_solutions``). The notebook states
how the search uses the generator as part of its contract (the base-10 exponents of all the
learning rates in one uniform draw, then those of all the regularisation strengths), so the
sampled values are comparable exactly; how the student gets from there to the values is theirs
to work out.

``best_model`` is open: the student trains any model on photo10 within a stated budget, and it is
graded by its accuracy on photo10's test split. The student's edition of the library holds no
test split at all (``edition.student_photo10``); the test images and labels are loaded here, in
the grader, from the repository's data. The images go to the student's ``best_model.loss``
through the proxy, the scores come back, and the accuracy is computed here. The reference is an
oracle that knows the labels, so every threshold check expects True.
"""

import weakref
from functools import cache

import numpy as np

from autograder.exercise import Check, Exercise, Mistake
from autograder.exercises import notebook_solutions

NOTEBOOK = "07_babysitting"

random_search = notebook_solutions(NOTEBOOK, "random_search")["random_search"]


# ---- typical mistakes ----

def _search_sampling_with(wrong_sampler):
    """The search loop with a wrong way of turning the generator's draws into values."""

    def search(train_fn, num_trials, lr_range, reg_range, rng):
        lrs = wrong_sampler(*lr_range, num_trials, rng)
        regs = wrong_sampler(*reg_range, num_trials, rng)
        results = [{"lr": float(lr), "reg": float(reg), "val_acc": float(train_fn(lr, reg))}
                   for lr, reg in zip(lrs, regs)]
        return max(results, key=lambda r: r["val_acc"]), results

    return search


# Uniform between low and high, not in log space.
_search_linear = _search_sampling_with(lambda low, high, size, rng: rng.uniform(low, high, size))
# Exponents drawn in base 10 but raised with e.
_search_natural_log = _search_sampling_with(
    lambda low, high, size, rng: np.exp(rng.uniform(np.log10(low), np.log10(high), size)))
# Exponents in base e (np.log) raised with 10.
_search_log_base_e = _search_sampling_with(
    lambda low, high, size, rng: 10.0 ** rng.uniform(np.log(low), np.log(high), size))


def _search_keeps_worst(train_fn, num_trials, lr_range, reg_range, rng):
    best, results = random_search(train_fn, num_trials, lr_range, reg_range, rng)
    return min(results, key=lambda r: r["val_acc"]), results


def _search_swapped(train_fn, num_trials, lr_range, reg_range, rng):
    """train_fn called with (reg, learning rate); the trials themselves are right."""
    return random_search(lambda lr, reg: train_fn(reg, lr), num_trials, lr_range, reg_range, rng)


# ---- checks ----

def _bumpy_accuracy(rng):
    """A smooth made-up validation accuracy with its peak at an rng-drawn (log lr, log reg)."""
    peak_lr, peak_reg = rng.uniform(-4, -2), rng.uniform(-5, -1)
    width_lr, width_reg = rng.uniform(0.5, 1.0), rng.uniform(1.0, 2.0)

    def train_fn(learning_rate, reg):
        a = (np.log10(learning_rate) - peak_lr) / width_lr
        b = (np.log10(reg) - peak_reg) / width_reg
        return 0.1 + 0.8 * np.exp(-0.5 * (a * a + b * b))

    return train_fn


def _search_run(num_trials, lr_range, reg_range):
    def run(ns, rng):
        train_fn = _bumpy_accuracy(rng)
        seed = int(rng.integers(2**31))
        calls = []

        def recording_train_fn(learning_rate, reg):
            calls.append((float(learning_rate), float(reg)))
            return train_fn(learning_rate, reg)

        best, results = ns["random_search"](recording_train_fn, num_trials, lr_range, reg_range,
                                            np.random.default_rng(seed))
        return {
            "num_results": len(results),
            "num_calls": len(calls),
            "lr": np.array([r["lr"] for r in results], dtype=np.float64),
            "reg": np.array([r["reg"] for r in results], dtype=np.float64),
            "val_acc": np.array([r["val_acc"] for r in results], dtype=np.float64),
            "best_lr": float(best["lr"]),
            "best_reg": float(best["reg"]),
            "best_val_acc": float(best["val_acc"]),
            "all_in_range": bool(all(lr_range[0] <= r["lr"] <= lr_range[1]
                                     and reg_range[0] <= r["reg"] <= reg_range[1] for r in results)),
        }

    return run


# ---- the open exercise: best_model on photo10 ----

CHANCE = 0.10       # ten balanced classes
BAR = 0.45          # test accuracy for full points (the notebook states it)
STEPS = 5           # hidden checks: one per fifth of the way from chance to the bar
# CPU seconds a check may take to ask best_model for its scores on 1,000 images: plenty for any
# model the budget lets the student train, too little to train one in the asking.
SCORING_CPU = 5.0
THRESHOLDS = tuple(round(CHANCE + k * (BAR - CHANCE) / STEPS, 4) for k in range(1, STEPS + 1))


@cache
def photo10_splits() -> dict:
    """photo10 as notebook 07's setup cell preprocesses it, with the test split it never sees.

    The full file of the repository (the grader's), the training mean image subtracted from every
    split: the same float32 pixels the student's validation images have.
    """
    from cs231n_lib.data import load_photo10

    data = load_photo10()
    return {key: data[key] for key in ("X_val", "y_val", "X_test", "y_test")}


def test_accuracy(scores, y) -> float:
    """The accuracy of ``scores`` (N, C) on labels ``y``, computed in this process."""
    scores = np.asarray(scores)
    if scores.dtype.kind not in "biuf" or scores.shape != (len(y), 10):
        raise ValueError(f"best_model.loss(X) must return scores of shape ({len(y)}, 10), got "
                         f"{scores.dtype.kind!r} values of shape {scores.shape}")
    scores = scores.astype(np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError("best_model.loss(X) returned nan or inf scores")
    return float(np.mean(np.argmax(scores, axis=1) == y))


class LabelOracle:
    """The reference "model": it looks each image up among photo10's val and test images."""

    def __init__(self, splits=("val", "test")):
        data = photo10_splits()
        self.labels = {}
        for split in splits:
            for row, label in zip(data[f"X_{split}"], data[f"y_{split}"]):
                self.labels[row.tobytes()] = int(label)

    def loss(self, X, y=None):
        """One-hot scores of the images it knows; equal scores (class 0 wins) for the others."""
        rows = (np.asarray(row, dtype=np.float32).tobytes() for row in X)
        return np.array([np.eye(10)[self.labels[r]] if r in self.labels else np.zeros(10)
                         for r in rows])


@cache
def _oracle() -> LabelOracle:
    return LabelOracle()


class _LazyOracle:
    """The oracle built on first use (loading photo10 takes seconds; most imports never need it)."""

    def loss(self, X, y=None):
        return _oracle().loss(X, y)


def _val_run(ns, rng):
    splits = photo10_splits()
    scores = ns["best_model"].loss(splits["X_val"])
    val_acc = test_accuracy(scores, splits["y_val"])
    # A model that knows the validation images by heart reaches the bar without learning
    # anything: the point also asks that the test images be classified better than by chance.
    return {"val_accuracy_reaches_the_bar": bool(val_acc >= BAR),
            "not_fitted_to_the_validation_split": bool(val_acc < BAR or _test_accuracy_of(ns) >= THRESHOLDS[0])}


_scored: list = [None, None]   # [a weak reference to the namespace last scored, its accuracy]


def _test_accuracy_of(ns) -> float:
    """The test accuracy of the namespace's best_model, asked of the child once per namespace:
    the STEPS threshold checks all read it (a restarted child is a new namespace, scored anew)."""
    if _scored[0] is not None and _scored[0]() is ns:
        return _scored[1]
    splits = photo10_splits()
    accuracy = test_accuracy(ns["best_model"].loss(splits["X_test"]), splits["y_test"])
    try:
        _scored[:] = [weakref.ref(ns), accuracy]
    except TypeError:  # a plain dict (the reference's and the mistakes' namespaces): not kept
        pass
    return accuracy


def _test_run(threshold):
    def run(ns, rng):
        return {"test_accuracy_reaches_the_threshold": bool(_test_accuracy_of(ns) >= threshold)}

    return run


class _ValidationOnly:
    """Right on the validation images, chance on the rest: a model fitted to the validation split."""

    def loss(self, X, y=None):
        return _val_oracle().loss(X, y)


@cache
def _val_oracle() -> LabelOracle:
    return LabelOracle(splits=("val",))


def _chance_model():
    class Constant:
        def loss(self, X, y=None):
            return np.zeros((len(X), 10))

    return Constant()


EXERCISES = (
    Exercise(
        name="random_search",
        reference={"random_search": random_search},
        checks=(
            Check("visible", _search_run(10, (1e-5, 1e-1), (1e-6, 1e-1)), hidden=False),
            Check("one_trial", _search_run(1, (1e-4, 1e-2), (1e-3, 1e-1))),
            Check("many_trials", _search_run(60, (1e-6, 1.0), (1e-7, 10.0))),
            Check("fine_range", _search_run(25, (3e-4, 3e-3), (1e-5, 1e-3))),
            Check("narrow_range", _search_run(50, (2e-4, 3e-4), (1e-3, 2e-3))),
            Check("wide_range", _search_run(200, (1e-8, 1e2), (1e-9, 10.0))),
        ),
        mistakes=(
            Mistake("your random_search keeps the trial with the LOWEST validation accuracy",
                    {"random_search": _search_keeps_worst}),
            Mistake("your random_search samples uniformly between the ends of each range, not in "
                    "log space: the exponent is what is uniform",
                    {"random_search": _search_linear}),
            Mistake("your random_search draws base-10 exponents but raises e to them",
                    {"random_search": _search_natural_log}),
            Mistake("your random_search draws natural-log exponents (np.log) but raises 10 to "
                    "them: the exponent and the power must share a base",
                    {"random_search": _search_log_base_e}),
            Mistake("your random_search passes the regularisation strength as the learning rate "
                    "(train_fn takes learning_rate first, then reg)", {"random_search": _search_swapped}),
        ),
    ),
    Exercise(
        name="train_best_model",
        # The checks read the model the cell leaves in best_model; train_best_model itself is
        # never called by a check (a class here, so the sample students' wrappers leave it be).
        reference={"train_best_model": _LazyOracle, "best_model": _LazyOracle()},
        checks=(
            Check("visible", _val_run, hidden=False, cpu_limit=SCORING_CPU),
            *(Check(f"test_accuracy_at_least_{t:.2f}", _test_run(t), cpu_limit=SCORING_CPU)
              for t in THRESHOLDS),
        ),
        mistakes=(
            Mistake("your best_model does no better than chance on the test images: has it been "
                    "trained (solver.train()), and does loss(X) return its scores?",
                    {"best_model": _chance_model()}),
            Mistake("your best_model reaches the bar on the validation images but stays near "
                    "chance on the test images: it was fitted to the validation split (trained on "
                    "X_val, or preprocessed X_val differently from the images it is given)",
                    {"best_model": _ValidationOnly()}),
        ),
    ),
)
