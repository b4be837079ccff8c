"""The optimiser explorer, driven headless: controls in, trajectories and figure out."""

import numpy as np
import pytest

import ipywidgets  # noqa: F401,E402

from cs231n_lib import optim  # noqa: E402
from cs231n_lib.widgets import optimiser_explorer  # noqa: E402
from cs231n_lib.widgets.optimiser import RULES, Ravine, rule_config, trajectory  # noqa: E402


@pytest.fixture
def explorer():
    return optimiser_explorer(steps=40)


def test_ravine_is_ill_conditioned_with_minimum_at_origin():
    ravine = Ravine(condition_number=50)
    assert ravine.curvatures[1] / ravine.curvatures[0] == pytest.approx(50)
    assert ravine.loss([0.0, 0.0]) == 0
    w = np.array([1.5, -0.7])
    h = 1e-6
    numeric = [(ravine.loss(w + h * e) - ravine.loss(w - h * e)) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(ravine.grad(w), numeric, rtol=1e-6)


def test_controls_and_one_trajectory_per_rule(explorer):
    assert {"learning_rate", "momentum", "beta1", "beta2", "steps", "rules"} <= set(explorer.controls)
    assert set(explorer.trajectories) == set(RULES)
    for rule, path in explorer.trajectories.items():
        assert path.shape == (41, 2), rule
        np.testing.assert_array_equal(path[0], [-4.0, 1.0])


def test_trajectory_is_the_library_rule_applied_step_by_step():
    ravine = Ravine(50)
    config = {"learning_rate": 0.1, "beta1": 0.8, "beta2": 0.99}
    path = trajectory("adam", ravine, start=(-4.0, 1.0), steps=5, config=config)
    w, cfg = np.array([-4.0, 1.0]), dict(config)
    for k in range(5):
        w, cfg = optim.adam(w, ravine.grad(w), cfg)
        np.testing.assert_allclose(path[k + 1], w)
    assert "m" not in config  # the caller's dict is left alone


def test_moving_a_control_recomputes_and_redraws_in_place(explorer):
    before = {r: p.copy() for r, p in explorer.trajectories.items()}
    redraws = explorer.redraws
    figure = explorer.figure
    explorer.controls["momentum"].value = 0.5
    assert explorer.redraws == redraws + 1
    assert explorer.figure is figure  # same figure, lines updated
    assert not np.allclose(explorer.trajectories["sgd_momentum"], before["sgd_momentum"])
    np.testing.assert_allclose(explorer.trajectories["sgd"], before["sgd"])  # no momentum in sgd
    line = explorer._lines["sgd_momentum"][0]
    np.testing.assert_allclose(line.get_xdata(), explorer.trajectories["sgd_momentum"][:, 0])


def test_betas_drive_adam_and_rmsprop_only(explorer):
    before = {r: p.copy() for r, p in explorer.trajectories.items()}
    explorer.update(beta1=0.5, beta2=0.9)
    assert explorer.redraws >= 2
    for rule in ("adam", "rmsprop"):
        assert not np.allclose(explorer.trajectories[rule], before[rule]), rule
    for rule in ("sgd", "sgd_momentum", "nesterov_momentum", "adagrad"):
        np.testing.assert_allclose(explorer.trajectories[rule], before[rule])


def test_update_of_several_controls_redraws_once(explorer):
    redraws = explorer.redraws
    explorer.update(learning_rate=0.05, momentum=0.8, steps=10)
    assert explorer.redraws == redraws + 1
    assert explorer.trajectories["sgd"].shape == (11, 2)


def test_momentum_beats_sgd_on_the_ravine_at_the_default_rate(explorer):
    losses = explorer.final_losses
    assert losses["sgd_momentum"] < losses["sgd"]
    assert losses["adam"] < explorer.ravine.loss(explorer.start)


def test_too_high_a_learning_rate_diverges_and_stops_early(explorer):
    explorer.update(learning_rate=1.0, rules=("sgd",))
    assert set(explorer.trajectories) == {"sgd"}
    assert len(explorer.trajectories["sgd"]) < explorer.controls["steps"].value + 1
    assert len(explorer._lines["adam"][0].get_xdata()) == 0  # deselected rules are cleared


def test_rule_config_routes_the_shared_controls():
    assert rule_config("sgd_momentum", 0.1, 0.7, 0.8, 0.95) == {"learning_rate": 0.1, "momentum": 0.7}
    assert rule_config("rmsprop", 0.1, 0.7, 0.8, 0.95) == {"learning_rate": 0.1, "decay_rate": 0.95}
    assert rule_config("adam", 0.1, 0.7, 0.8, 0.95) == {"learning_rate": 0.1, "beta1": 0.8, "beta2": 0.95}


def test_bad_input_names_the_problem(explorer):
    with pytest.raises(ValueError, match="unknown control 'lr'"):
        explorer.update(lr=0.1)
    with pytest.raises(ValueError, match="unknown update rule"):
        trajectory("lbfgs", Ravine())
    with pytest.raises(ValueError, match="unknown update rule"):
        optimiser_explorer(rules=("sgd", "newton"))
    with pytest.raises(ValueError, match="condition_number"):
        Ravine(condition_number=0.5)
    with pytest.raises(ValueError, match="start must have shape"):
        trajectory("sgd", Ravine(), start=(1.0, 2.0, 3.0))
