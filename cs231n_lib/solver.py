"""The Solver: minibatch training of a model, with the bookkeeping around it.

    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, batch_size=100, num_epochs=10)
    solver.train()
    solver.loss_history, solver.train_acc_history, solver.val_acc_history, solver.best_params

The model needs `params` (dict of arrays) and `loss(X, y=None)` returning scores when y is None
and (loss, grads) otherwise. `data` holds X_train, y_train, X_val, y_val.

What train() does:
- each iteration: sample a minibatch (with replacement, from the solver's own seeded
  Generator), compute loss and gradients, update every parameter with the update rule, each
  parameter keeping its own optimiser config (momentum, Adam's m, v, t, ...);
- at the end of each epoch: multiply every learning rate by lr_decay, measure training and
  validation accuracy, keep a copy of the parameters with the best validation accuracy, and,
  with checkpoint_name set, save a checkpoint;
- at the end: put the best parameters back in the model;
- it stops early, with a message in `stop_reason`, if the loss turns NaN or infinite or rises
  above 3x the first loss: the learning rate is too high, and going on wastes time.

A checkpoint holds the model's parameters (and batchnorm running averages and dropout
Generator, where the model has them), the optimiser configs, epoch, iteration, histories, best
parameters and the solver's Generator state. `Solver.resume(path, model, data)` rebuilds the
solver from it, and its train() continues exactly, bit for bit, as the uninterrupted run would
have.
"""

import copy
import os
import pickle

import numpy as np

from cs231n_lib import optim
from cs231n_lib.layers import check_positive_int
from cs231n_lib.optim import UPDATE_RULES
from cs231n_lib.progress import ProgressBar

EXPLOSION_FACTOR = 3.0
_SETTINGS = ("update_rule", "optim_config", "lr_decay", "batch_size", "num_epochs",
             "num_train_samples", "num_val_samples", "checkpoint_name", "print_every",
             "verbose", "seed")


def _model_state(model, with_rng=True):
    """What training changes in the model: params, batchnorm statistics and (with_rng) the
    Generator its dropout masks come from."""
    state = {"params": {k: np.array(v, copy=True) for k, v in model.params.items()}}
    if hasattr(model, "bn_params"):
        state["bn_params"] = copy.deepcopy(model.bn_params)
    if with_rng and isinstance(getattr(model, "rng", None), np.random.Generator):
        state["rng"] = copy.deepcopy(model.rng.bit_generator.state)
    return state


def _set_model_state(model, state):
    model.params = {k: np.array(v, copy=True) for k, v in state["params"].items()}
    if "bn_params" in state:
        model.bn_params = copy.deepcopy(state["bn_params"])
    if "rng" in state:
        model.rng.bit_generator.state = copy.deepcopy(state["rng"])


class Solver:
    """Trains a classification model with minibatch gradient descent.

    Arguments:
    - model: an object with `params` and `loss(X, y=None)` (see the module docstring).
    - data: dict with X_train (N_train, ...), y_train (N_train,), X_val, y_val.
    - update_rule: name of a rule in cs231n_lib.optim, or a function with the same signature.
    - optim_config: hyperparameters for the rule (copied for each parameter; not modified).
    - lr_decay: the learning rate is multiplied by this after each epoch.
    - batch_size: minibatch size. num_epochs: number of epochs to train for.
    - num_train_samples: training accuracy is measured on this many sampled training examples
      (None: all). num_val_samples: the same for validation (None: all).
    - checkpoint_name: if given, a checkpoint is written to f"{checkpoint_name}_epoch_{e}.pkl"
      after every epoch e.
    - print_every: log the loss every this many iterations (with verbose).
    - verbose: show a progress bar and log lines; False trains silently.
    - seed: seeds the Generator that samples minibatches and accuracy subsets.

    Attributes after train(): loss_history (one per iteration), train_acc_history and
    val_acc_history (one per epoch, plus one after the first iteration), best_val_acc,
    best_params, epoch, iteration, stop_reason (None, or why training stopped early),
    last_checkpoint (path of the last checkpoint written).
    """

    def __init__(self, model, data, update_rule="sgd", optim_config={}, lr_decay=1.0,
                 batch_size=100, num_epochs=10, num_train_samples=1000, num_val_samples=None,
                 checkpoint_name=None, print_every=10, verbose=True, seed=None):
        # optim_config={} as in the API; it is only ever copied, never modified.
        if not hasattr(model, "params") or not callable(getattr(model, "loss", None)):
            raise ValueError("Solver: model must have a `params` dict and a `loss` method")
        for key in ("X_train", "y_train", "X_val", "y_val"):
            if key not in data:
                raise ValueError(f"Solver: data is missing the required key {key!r}")
        for split in ("train", "val"):
            X, y = data[f"X_{split}"], data[f"y_{split}"]
            if len(X) == 0:
                raise ValueError(f"Solver: X_{split} is an empty batch (shape {np.shape(X)})")
            if np.shape(y) != (len(X),):
                raise ValueError(f"Solver: y_{split} has shape {np.shape(y)} but X_{split} "
                                 f"has {len(X)} examples")
        if isinstance(update_rule, str):
            if update_rule not in UPDATE_RULES:
                raise ValueError(f"Solver: unknown update_rule {update_rule!r}; expected one "
                                 f"of {list(UPDATE_RULES)} or a function")
            self._update = getattr(optim, update_rule)
        elif callable(update_rule):
            self._update = update_rule
        else:
            raise ValueError(f"Solver: update_rule must be a name or a function, "
                             f"got {update_rule!r}")
        if not isinstance(optim_config, dict):
            raise ValueError(f"Solver: optim_config must be a dict, got {optim_config!r}")
        for name, value in (("batch_size", batch_size), ("num_epochs", num_epochs),
                            ("print_every", print_every)):
            check_positive_int(value, name, "Solver")

        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        self.update_rule = update_rule
        self.optim_config = copy.deepcopy(optim_config)
        self.lr_decay = lr_decay
        self.batch_size = batch_size
        self.num_epochs = num_epochs
        self.num_train_samples = num_train_samples
        self.num_val_samples = num_val_samples
        self.checkpoint_name = checkpoint_name
        self.print_every = print_every
        self.verbose = verbose
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._reset()

    def _reset(self):
        """Start-of-training bookkeeping (not called by resume, which restores it instead)."""
        self.epoch = 0
        self.iteration = 0
        self.best_val_acc = 0.0
        self.best_params = {}
        self._best_state = None
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        self.stop_reason = None
        self.last_checkpoint = None
        self.optim_configs = {p: copy.deepcopy(self.optim_config) for p in self.model.params}

    # ----------------------------------------------------------------------------- training

    def _step(self):
        """One minibatch update of every parameter."""
        num_train = self.X_train.shape[0]
        batch_mask = self.rng.choice(num_train, self.batch_size)
        loss, grads = self.model.loss(self.X_train[batch_mask], self.y_train[batch_mask])
        self.loss_history.append(float(loss))
        for p, w in self.model.params.items():
            next_w, next_config = self._update(w, grads[p], self.optim_configs[p])
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Fraction of examples the model classifies correctly.

        Inputs: X (N, ...); y (N,); num_samples: if N is larger, a random subset of this size
        (drawn from the solver's Generator); batch_size: examples per forward pass.
        Returns: accuracy, a float in [0, 1].
        """
        N = X.shape[0]
        if N == 0:
            raise ValueError("check_accuracy: X is an empty batch")
        if np.shape(y) != (N,):
            raise ValueError(f"check_accuracy: y has shape {np.shape(y)}, X has {N} examples")
        if num_samples is not None and N > num_samples:
            mask = self.rng.choice(N, num_samples)
            X, y = X[mask], y[mask]
            N = num_samples
        y_pred = []
        for start in range(0, N, batch_size):
            scores = self.model.loss(X[start:start + batch_size])
            y_pred.append(np.argmax(scores, axis=1))
        return float(np.mean(np.concatenate(y_pred) == y))

    def _explosion(self, loss):
        """A message if the loss is NaN/inf or above 3x the first loss, else None."""
        first = self.loss_history[0]
        where = f"at iteration {self.iteration} (epoch {self.epoch})"
        if not np.isfinite(loss):
            return (f"Training stopped {where}: the loss is {loss}. The updates diverged; "
                    f"lower the learning rate.")
        if loss > EXPLOSION_FACTOR * first:
            return (f"Training stopped {where}: the loss {loss:.4g} exceeds "
                    f"{EXPLOSION_FACTOR:g}x the first loss {first:.4g}. The learning rate "
                    f"is probably too high.")
        return None

    def train(self):
        """Run the optimisation (continuing from the current iteration after a resume)."""
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        self.stop_reason = None
        bar = ProgressBar(num_iterations, desc="training", initial=self.iteration,
                          enabled=self.verbose)
        try:
            while self.iteration < num_iterations:
                t = self.iteration
                self._step()
                self.iteration += 1
                loss = self.loss_history[-1]
                if t % self.print_every == 0:
                    bar.write(f"(Iteration {t + 1} / {num_iterations}) loss: {loss:f}")

                self.stop_reason = self._explosion(loss)
                if self.stop_reason is not None:
                    bar.write(self.stop_reason)
                    break

                epoch_end = (t + 1) % iterations_per_epoch == 0
                if epoch_end:
                    self.epoch += 1
                    for config in self.optim_configs.values():
                        config["learning_rate"] *= self.lr_decay
                bar.update(1, epoch=self.epoch, loss=f"{loss:.4g}")
                if t == 0 or t == num_iterations - 1 or epoch_end:
                    train_acc = self.check_accuracy(self.X_train, self.y_train,
                                                    num_samples=self.num_train_samples)
                    val_acc = self.check_accuracy(self.X_val, self.y_val,
                                                  num_samples=self.num_val_samples)
                    self.train_acc_history.append(train_acc)
                    self.val_acc_history.append(val_acc)
                    bar.write(f"(Epoch {self.epoch} / {self.num_epochs}) "
                              f"train acc: {train_acc:f}; val_acc: {val_acc:f}")
                    if val_acc > self.best_val_acc or self._best_state is None:
                        self.best_val_acc = val_acc
                        self._best_state = _model_state(self.model, with_rng=False)
                        self.best_params = self._best_state["params"]
                    if epoch_end and self.checkpoint_name is not None:
                        self.save_checkpoint()
        finally:
            bar.close()
        if self._best_state is not None:
            _set_model_state(self.model, self._best_state)

    # ----------------------------------------------------------------------------- checkpoints

    def checkpoint(self):
        """The solver's full state as a dict (what save_checkpoint pickles)."""
        return {
            "settings": {k: copy.deepcopy(getattr(self, k)) for k in _SETTINGS},
            "model_state": _model_state(self.model),
            "optim_configs": copy.deepcopy(self.optim_configs),
            "epoch": self.epoch,
            "iteration": self.iteration,
            "loss_history": list(self.loss_history),
            "train_acc_history": list(self.train_acc_history),
            "val_acc_history": list(self.val_acc_history),
            "best_val_acc": self.best_val_acc,
            "best_state": copy.deepcopy(self._best_state),
            "rng_state": copy.deepcopy(self.rng.bit_generator.state),
        }

    def save_checkpoint(self, path=None):
        """Write the checkpoint (default f"{checkpoint_name}_epoch_{epoch}.pkl"); return path."""
        if path is None:
            if self.checkpoint_name is None:
                raise ValueError("save_checkpoint: give a path or set checkpoint_name")
            path = f"{self.checkpoint_name}_epoch_{self.epoch}.pkl"
        try:
            payload = pickle.dumps(self.checkpoint())
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            raise ValueError(f"save_checkpoint: the solver's state cannot be pickled ({e}); "
                             f"an update_rule must be a module-level function, not a lambda"
                             ) from e
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)  # a crash mid-write never leaves a truncated checkpoint
        self.last_checkpoint = path
        return path

    @classmethod
    def resume(cls, path, model, data, **overrides):
        """A Solver that continues the run saved in the checkpoint at `path`.

        Inputs:
        - path: a checkpoint written by save_checkpoint.
        - model: a model of the same architecture (its params are overwritten).
        - data: the same data dict as the original run.
        - overrides: Solver settings to change, e.g. num_epochs=20 to train for longer or
          verbose=False. Changing batch_size or update_rule breaks exact continuation.
        Returns: the Solver; call train() to continue.
        """
        with open(path, "rb") as f:
            ckpt = pickle.load(f)
        for key in ("settings", "model_state", "optim_configs", "rng_state"):
            if key not in ckpt:
                raise ValueError(f"Solver.resume: {path} is not a Solver checkpoint "
                                 f"(missing {key!r})")
        saved = ckpt["model_state"]["params"]
        if set(saved) != set(model.params) or any(
                np.shape(saved[k]) != np.shape(model.params[k]) for k in saved):
            raise ValueError(
                "Solver.resume: the model's parameters do not match the checkpoint's: "
                f"model {{{', '.join(f'{k}: {np.shape(v)}' for k, v in model.params.items())}}}"
                f" vs checkpoint {{{', '.join(f'{k}: {np.shape(v)}' for k, v in saved.items())}}}")
        unknown = set(overrides) - set(_SETTINGS)
        if unknown:
            raise ValueError(f"Solver.resume: unknown settings {sorted(unknown)}")
        settings = dict(ckpt["settings"], **overrides)
        _set_model_state(model, ckpt["model_state"])
        solver = cls(model, data, **settings)
        solver.optim_configs = copy.deepcopy(ckpt["optim_configs"])
        solver.epoch = ckpt["epoch"]
        solver.iteration = ckpt["iteration"]
        solver.loss_history = list(ckpt["loss_history"])
        solver.train_acc_history = list(ckpt["train_acc_history"])
        solver.val_acc_history = list(ckpt["val_acc_history"])
        solver.best_val_acc = ckpt["best_val_acc"]
        solver._best_state = copy.deepcopy(ckpt["best_state"])
        solver.best_params = solver._best_state["params"] if solver._best_state else {}
        solver.rng.bit_generator.state = copy.deepcopy(ckpt["rng_state"])
        solver.last_checkpoint = str(path)
        return solver
