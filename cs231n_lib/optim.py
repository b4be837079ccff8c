"""First-order update rules.

Every rule has the signature

    next_w, config = rule(w, dw, config=None)

- w: the current weights (any shape); dw: the gradient of the loss with respect to w.
- config: a dict of hyperparameters (learning_rate, momentum, ...) and of the rule's state
  (velocity, cache, m, v, t). Missing hyperparameters get their defaults via
  `config.setdefault`; missing state starts at zero. Pass the returned config back in on the
  next step: the state carried in it is what makes momentum, AdaGrad, RMSProp and Adam work,
  and what a checkpoint has to save so that training resumes where it stopped.

The rules never modify w in place; the state arrays in config are replaced, not mutated.
"""

import numpy as np

from .registry import exercise

# The rules by name, in the order the course meets them (Solver's update_rule, the explorer).
UPDATE_RULES = ("sgd", "sgd_momentum", "nesterov_momentum", "adagrad", "rmsprop", "adam")


def start_update(w, dw, config, rule, **defaults):
    """w and dw as arrays of one shape, and config with the rule's defaults filled in."""
    w = np.asarray(w)
    dw = np.asarray(dw)
    if w.shape != dw.shape:
        raise ValueError(f"{rule}: w has shape {w.shape} but dw has shape {dw.shape}")
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise ValueError(f"{rule}: config must be a dict or None, got {type(config).__name__}")
    for key, value in defaults.items():
        config.setdefault(key, value)
    return w, dw, config


def state_or_zeros(config, key, w, rule):
    """The state array config[key], zeros like w if absent; ValueError if its shape is off."""
    value = config.get(key)
    if value is None:
        return np.zeros_like(w)
    if np.shape(value) != w.shape:
        raise ValueError(f"{rule}: config[{key!r}] has shape {np.shape(value)}, "
                         f"expected the shape of w {w.shape}")
    return value


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: w -= learning_rate * dw.

    config: learning_rate (1e-2).
    """
    w, dw, config = start_update(w, dw, config, "sgd", learning_rate=1e-2)
    next_w = w - config["learning_rate"] * dw
    return next_w, config


@exercise("05_optimisers")
def sgd_momentum(w, dw, config=None):
    """SGD with momentum: the velocity integrates the gradients, friction mu damps it.

        v = mu * v - learning_rate * dw
        w = w + v

    config: learning_rate (1e-2), momentum mu (0.9), velocity (zeros like w).
    """
    w, dw, config = start_update(w, dw, config, "sgd_momentum", learning_rate=1e-2,
                                 momentum=0.9)
    v = state_or_zeros(config, "velocity", w, "sgd_momentum")
    v = config["momentum"] * v - config["learning_rate"] * dw
    next_w = w + v
    config["velocity"] = v
    return next_w, config


@exercise("05_optimisers")
def nesterov_momentum(w, dw, config=None):
    """Nesterov momentum, in the form that needs the gradient at w only.

    Nesterov evaluates the gradient at the look-ahead point w + mu * v. Renaming the
    variable we store to that look-ahead point (Sutskever et al. 2013; the CS231n notes)
    turns the update into one that uses dw at the stored point:

        v_prev = v
        v = mu * v - learning_rate * dw
        w = w - mu * v_prev + (1 + mu) * v

    config: learning_rate (1e-2), momentum mu (0.9), velocity (zeros like w).
    """
    w, dw, config = start_update(w, dw, config, "nesterov_momentum", learning_rate=1e-2,
                                 momentum=0.9)
    mu = config["momentum"]
    v_prev = state_or_zeros(config, "velocity", w, "nesterov_momentum")
    v = mu * v_prev - config["learning_rate"] * dw
    next_w = w - mu * v_prev + (1 + mu) * v
    config["velocity"] = v
    return next_w, config


@exercise("05_optimisers")
def adagrad(w, dw, config=None):
    """AdaGrad: a step size of its own for every parameter, from the gradients it has seen.

    config['cache'] (the shape of w) holds, per parameter, the sum of all its squared gradients
    so far. Each step divides the parameter's gradient step by the square root of that sum, plus
    epsilon so that a parameter whose gradients were all zero does not divide by zero: steep
    directions get small steps, flat ones large steps.

    config: learning_rate (1e-2), epsilon (1e-8), cache (zeros like w).
    """
    w, dw, config = start_update(w, dw, config, "adagrad", learning_rate=1e-2, epsilon=1e-8)
    cache = state_or_zeros(config, "cache", w, "adagrad") + dw * dw
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    config["cache"] = cache
    return next_w, config


@exercise("05_optimisers")
def rmsprop(w, dw, config=None):
    """RMSProp: AdaGrad with a leaky cache, so that the steps do not die out.

    config['cache'] (the shape of w) is a moving average of the squared gradients instead of
    their sum: each step keeps the fraction decay_rate of the old cache and gives the new squared
    gradient the rest of the weight, so under a constant gradient g the cache tends to g**2.
    The step is AdaGrad's, with this cache.

    config: learning_rate (1e-2), decay_rate (0.99), epsilon (1e-8), cache (zeros like w).
    """
    w, dw, config = start_update(w, dw, config, "rmsprop", learning_rate=1e-2, decay_rate=0.99,
                                 epsilon=1e-8)
    decay = config["decay_rate"]
    cache = decay * state_or_zeros(config, "cache", w, "rmsprop") + (1 - decay) * dw * dw
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    config["cache"] = cache
    return next_w, config


@exercise("05_optimisers")
def adam(w, dw, config=None):
    """Adam: momentum's average of the gradients and RMSProp's average of their squares.

    config['m'] (the first moment) averages the gradients and config['v'] (the second moment)
    their squares, each a leaky average like RMSProp's cache, with decay rates beta1 and beta2.
    The step is RMSProp's with m in place of the gradient and v in place of the cache, both
    bias-corrected: they start at zero, so in the first steps they are too small, by a factor
    that depends only on the decay rate and the number of steps t. Adam increments t before
    the bias correction, so the first step uses t = 1.

    config: learning_rate (1e-3), beta1 (0.9), beta2 (0.999), epsilon (1e-8),
    m, v (zeros like w), t (0).
    """
    w, dw, config = start_update(w, dw, config, "adam", learning_rate=1e-3, beta1=0.9,
                                 beta2=0.999, epsilon=1e-8, t=0)
    beta1, beta2 = config["beta1"], config["beta2"]
    t = config["t"] + 1
    m = beta1 * state_or_zeros(config, "m", w, "adam") + (1 - beta1) * dw
    v = beta2 * state_or_zeros(config, "v", w, "adam") + (1 - beta2) * dw * dw
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    config.update(m=m, v=v, t=t)
    return next_w, config
