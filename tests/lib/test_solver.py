"""Solver: training bookkeeping, lr decay, best-params restore, early stop on NaN/explosion,
checkpoint and bit-for-bit resume, bad input; and the progress display it uses."""

import io
import pickle

import numpy as np
import pytest

from cs231n_lib.data import load_digits
from cs231n_lib.models import FullyConnectedNet
from cs231n_lib.progress import ProgressBar, _Rendered, format_time
from cs231n_lib.solver import Solver


@pytest.fixture(scope="module")
def digits():
    d = load_digits(num_train=400, num_val=100, num_test=100, flatten=True)
    return {k: d[k] for k in ("X_train", "y_train", "X_val", "y_val")}


def net(**kw):
    args = dict(hidden_dims=[40], input_dim=64, num_classes=10, seed=0)
    args.update(kw)
    return FullyConnectedNet(**args)


def test_training_learns_and_keeps_histories(digits, capsys):
    model = net()
    solver = Solver(model, digits, update_rule="adam", optim_config={"learning_rate": 1e-2},
                    batch_size=50, num_epochs=3, verbose=False, seed=0)
    solver.train()
    assert capsys.readouterr().out == ""  # verbose=False: silent
    assert len(solver.loss_history) == 3 * 400 // 50
    # One accuracy after the first iteration, then one per epoch.
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 4
    assert solver.epoch == 3 and solver.stop_reason is None
    assert solver.val_acc_history[-1] > 0.7
    assert np.mean(solver.loss_history[-4:]) < 0.5 * solver.loss_history[0]


def test_best_params_restored(digits):
    model = net()
    solver = Solver(model, digits, update_rule="sgd", optim_config={"learning_rate": 0.5},
                    batch_size=25, num_epochs=4, verbose=False, seed=1)
    solver.train()
    assert solver.best_val_acc == max(solver.val_acc_history)
    for k in model.params:
        np.testing.assert_array_equal(model.params[k], solver.best_params[k])
    assert solver.check_accuracy(digits["X_val"], digits["y_val"]) == solver.best_val_acc


def test_lr_decays_once_per_epoch(digits):
    solver = Solver(net(), digits, update_rule="sgd_momentum",
                    optim_config={"learning_rate": 0.1}, lr_decay=0.5, batch_size=100,
                    num_epochs=3, verbose=False, seed=0)
    solver.train()
    for config in solver.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(0.1 * 0.5**3)
        assert "velocity" in config  # each parameter carries its own optimiser state
    assert solver.optim_config == {"learning_rate": 0.1}  # the caller's config is not touched


def test_verbose_output(digits, capsys):
    Solver(net(), digits, batch_size=100, num_epochs=2, print_every=3, seed=0).train()
    out = capsys.readouterr()
    assert "(Iteration 1 / 8) loss:" in out.out and "(Iteration 4 / 8) loss:" in out.out
    assert "(Epoch 2 / 2) train acc:" in out.out
    assert "training: |" in out.out  # the bar's line (plain style: the stream is no tty)
    assert out.err == ""


def test_explosion_stops_with_a_message(digits, capsys):
    model = net()
    solver = Solver(model, digits, update_rule="sgd", optim_config={"learning_rate": 100.0},
                    batch_size=50, num_epochs=5, seed=0)
    solver.train()
    assert solver.stop_reason.startswith("Training stopped at iteration 2 (epoch 0): the loss ")
    assert "exceeds 3x the first loss" in solver.stop_reason
    assert "learning rate is probably too high" in solver.stop_reason
    assert len(solver.loss_history) == 2
    assert solver.loss_history[1] > 3 * solver.loss_history[0]
    assert solver.stop_reason in capsys.readouterr().out


class NaNAfter:
    """A model whose loss turns NaN after a few calls in train mode."""

    def __init__(self, calls):
        self.params = {"w": np.zeros(3)}
        self.calls = calls

    def loss(self, X, y=None):
        if y is None:
            return np.zeros((len(X), 10))
        self.calls -= 1
        return (np.nan if self.calls < 0 else 2.0), {"w": np.ones(3)}


def test_nan_loss_stops_with_a_message(digits):
    solver = Solver(NaNAfter(3), digits, batch_size=50, num_epochs=5, verbose=False)
    solver.train()
    assert solver.stop_reason == ("Training stopped at iteration 4 (epoch 0): the loss is nan. "
                                  "The updates diverged; lower the learning rate.")
    assert len(solver.loss_history) == 4


def _run(digits, model, tmp_path, name, **kw):
    settings = dict(update_rule="adam", optim_config={"learning_rate": 2e-3}, lr_decay=0.9,
                    batch_size=50, num_epochs=4, num_train_samples=150, num_val_samples=60,
                    checkpoint_name=str(tmp_path / name), verbose=False, seed=7)
    settings.update(kw)
    solver = Solver(model, digits, **settings)
    solver.train()
    return solver


@pytest.mark.parametrize("kw", [
    dict(normalization="batchnorm", dropout_keep_ratio=0.8),  # fresh masks from model.rng
    dict(normalization="layernorm", hidden_dims=[30, 20]),
])
def test_resume_equals_uninterrupted_run_bit_for_bit(digits, tmp_path, kw):
    full = _run(digits, net(seed=3, fix_dropout_masks=False, **kw), tmp_path, "full")
    part = _run(digits, net(seed=3, fix_dropout_masks=False, **kw), tmp_path, "part",
                num_epochs=2)
    path = tmp_path / "part_epoch_2.pkl"
    assert part.last_checkpoint == str(path)

    # Another init and another dropout stream: everything must come from the checkpoint.
    other = net(seed=99, fix_dropout_masks=False, **kw)
    resumed = Solver.resume(path, other, digits, num_epochs=4)
    assert resumed.iteration == 16 and resumed.epoch == 2
    resumed.train()

    assert resumed.loss_history == full.loss_history
    assert resumed.train_acc_history == full.train_acc_history
    assert resumed.val_acc_history == full.val_acc_history
    assert resumed.best_val_acc == full.best_val_acc
    for k in full.model.params:
        np.testing.assert_array_equal(resumed.model.params[k], full.model.params[k])
        for key, value in full.optim_configs[k].items():
            np.testing.assert_array_equal(resumed.optim_configs[k][key], value)
    for a, b in zip(resumed.model.bn_params, full.model.bn_params):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert resumed.model.rng.bit_generator.state == full.model.rng.bit_generator.state


def test_checkpoint_contents(digits, tmp_path):
    solver = _run(digits, net(normalization="batchnorm"), tmp_path, "ck", num_epochs=1)
    with open(tmp_path / "ck_epoch_1.pkl", "rb") as f:
        ckpt = pickle.load(f)
    assert ckpt["epoch"] == 1 and ckpt["iteration"] == 8
    assert set(ckpt["model_state"]["params"]) == set(solver.model.params)
    assert "running_mean" in ckpt["model_state"]["bn_params"][0]
    assert ckpt["optim_configs"]["W1"]["t"] == 8  # Adam's state travels with it
    assert len(ckpt["loss_history"]) == 8 and len(ckpt["val_acc_history"]) == 2
    assert ckpt["settings"]["update_rule"] == "adam"
    assert "rng_state" in ckpt


def test_checkpoint_with_a_custom_rule(digits, tmp_path):
    from cs231n_lib.optim import sgd
    solver = Solver(net(), digits, update_rule=sgd, num_epochs=1, verbose=False)
    solver.train()
    path = solver.save_checkpoint(tmp_path / "custom.pkl")
    assert Solver.resume(path, net(), digits).update_rule is sgd
    solver.update_rule = lambda w, dw, config=None: (w, config)
    with pytest.raises(ValueError, match="cannot be pickled.*not a lambda"):
        solver.save_checkpoint(tmp_path / "lambda.pkl")


def test_resume_rejects_a_different_model(digits, tmp_path):
    _run(digits, net(), tmp_path, "ck", num_epochs=1)
    with pytest.raises(ValueError, match=r"do not match the checkpoint's: model \{W1: \(64, 30\)"):
        Solver.resume(tmp_path / "ck_epoch_1.pkl", net(hidden_dims=[30]), digits)
    with pytest.raises(ValueError, match=r"unknown settings \['epochs'\]"):
        Solver.resume(tmp_path / "ck_epoch_1.pkl", net(), digits, epochs=3)


@pytest.mark.parametrize("change, message", [
    (dict(drop="X_val"), "data is missing the required key 'X_val'"),
    (dict(update_rule="adamw"), "unknown update_rule 'adamw'"),
    (dict(batch_size=0), "batch_size must be a positive integer, got 0"),
    (dict(y_train=np.zeros(3, int)), r"y_train has shape \(3,\) but X_train has 400 examples"),
    (dict(X_train=np.zeros((0, 64)), y_train=np.zeros(0, int)), "X_train is an empty batch"),
])
def test_bad_input(digits, change, message):
    data = dict(digits)
    kwargs = {}
    for key, value in change.items():
        if key == "drop":
            del data[value]
        elif key in data:
            data[key] = value
        else:
            kwargs[key] = value
    with pytest.raises(ValueError, match=message):
        Solver(net(), data, **kwargs)


def test_check_accuracy_subsamples_and_rejects_bad_labels(digits):
    model = net()
    seen = []
    predict = model.loss
    model.loss = lambda X, y=None: seen.append(len(X)) or predict(X, y)
    solver = Solver(model, digits, verbose=False, seed=0)
    acc = solver.check_accuracy(digits["X_val"], digits["y_val"], num_samples=30, batch_size=8)
    assert seen == [8, 8, 8, 6] and 0 <= acc <= 1
    seen.clear()
    solver.check_accuracy(digits["X_val"], digits["y_val"])
    assert seen == [100]
    with pytest.raises(ValueError, match=r"y has shape \(5,\), X has 100 examples"):
        solver.check_accuracy(digits["X_val"], digits["y_val"][:5])


# ------------------------------------------------------------------------- progress display


def test_progress_terminal_style_redraws_one_line():
    out = io.StringIO()
    bar = ProgressBar(4, desc="run", style="terminal", file=out, min_interval=0)
    bar.update(2, loss="1.5")
    bar.write("a log line")
    bar.update(2)
    bar.close()
    text = out.getvalue()
    assert "\rrun: |###############---------------| 2/4" in text
    assert "loss=1.5" in text and "a log line\n" in text
    last = text.split("\r")[-1]  # what stays on screen
    assert last.startswith("run: |" + "#" * 30 + "| 4/4 [") and last.endswith("]\n")


def test_progress_plain_style_writes_only_lines_and_a_summary():
    out = io.StringIO()
    with ProgressBar(10, desc="x", style="plain", file=out, initial=5) as bar:
        bar.update(5)
        bar.write("hello")
    assert out.getvalue().startswith("hello\nx: |") and "10/10" in out.getvalue()
    assert "\r" not in out.getvalue()


def test_progress_notebook_style_uses_one_display(capsys):
    # Outside a kernel IPython's display prints the plain-text form: one line per redraw.
    bar = ProgressBar(3, style="notebook", min_interval=0)
    bar.update(3)
    bar.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("|") and "0/3" in lines[0] and "3/3" in lines[-1]
    html = _Rendered("a<b", 0.5)._repr_html_()  # what a kernel shows
    assert '<progress value="0.5000"' in html and "a&lt;b" in html


def test_progress_disabled_is_silent(capsys):
    bar = ProgressBar(3, enabled=False)
    bar.update(3)
    bar.write("nothing")
    bar.close()
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="unknown progress style 'fancy'"):
        ProgressBar(3, style="fancy")


def test_format_time():
    assert (format_time(5), format_time(65), format_time(3725)) == ("0:05", "1:05", "1:02:05")


@pytest.mark.slow
def test_progress_in_a_real_kernel(tmp_path):
    # One display area updated in place, the log lines as stdout, nothing on stderr
    # (nbgrader zeroes a cell that writes to stderr).
    import nbclient
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from cs231n_lib.data import load_digits\n"
        "from cs231n_lib.models import FullyConnectedNet\n"
        "from cs231n_lib.solver import Solver\n"
        "d = load_digits(num_train=200, flatten=True)\n"
        "model = FullyConnectedNet([20], input_dim=64, num_classes=10, seed=0)\n"
        "Solver(model, d, num_epochs=2, batch_size=50, print_every=4, seed=0).train()\n")]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute(cwd=str(tmp_path))
    outputs = nb.cells[0].outputs
    displays = [o for o in outputs if o.output_type == "display_data"]
    assert len(displays) == 1
    assert "8/8" in displays[0].data["text/plain"]
    assert "<progress" in displays[0].data["text/html"]
    streams = [o for o in outputs if o.output_type == "stream"]
    assert {o.name for o in streams} == {"stdout"}
    assert "(Epoch 2 / 2) train acc:" in "".join(o.text for o in streams)
