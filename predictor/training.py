"""Training many tiny models at once: optax Adam, seeded restarts, best on validation.

The loss is a smoothed absolute error of normalised log time. Every model of a
group (the same number of features) trains in one jitted
call: rows are padded to a common count and masked, restarts and models are
vmapped. Each restart keeps the parameters of its lowest validation loss seen
during training (early stopping by checkpoint), and the restart with the lowest
validation loss wins. Held-out test rows never enter this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from predictor import mlp

STEPS = 6000
RESTARTS = 4
LEARNING_RATE = 0.01
VALIDATION_SHARE = 0.2


@dataclass(frozen=True)
class TrainingSet:
    """One model's rows, already normalised: features [n, d], targets [n]."""

    features: np.ndarray
    targets: np.ndarray


def _loss(params: mlp.Params, x: jax.Array, y: jax.Array, weights: jax.Array) -> jax.Array:
    """Weighted mean of a smoothed absolute error of log time.

    Absolute rather than squared: a few measurements disturbed by the machine (a
    page fault storm, a descheduled thread) should not pull the fit, and MAPE, the
    error that matters, is itself an absolute error."""
    residual = jax.vmap(mlp.predict, in_axes=(None, 0))(params, x) - y
    smooth_abs = jnp.sqrt(residual**2 + 1e-4)
    return jnp.sum(weights * smooth_abs) / jnp.maximum(jnp.sum(weights), 1.0)


_Carry = tuple[mlp.Params, optax.OptState, mlp.Params, jax.Array]
"""What one training step carries: parameters, optimiser state, the best parameters
and their validation loss."""


def _fit_one(key: jax.Array, x: jax.Array, y: jax.Array, train_w: jax.Array,
             val_w: jax.Array, *, hidden: int, steps: int) -> tuple[mlp.Params, jax.Array]:
    params = mlp.init(key, x.shape[1], hidden)
    schedule = optax.cosine_decay_schedule(LEARNING_RATE, steps, alpha=0.05)
    optimiser = optax.adam(schedule)
    state = optimiser.init(params)

    def step(carry: _Carry, _: None) -> tuple[_Carry, None]:
        params, state, best, best_loss = carry
        grads = jax.grad(_loss)(params, x, y, train_w)
        updates, state = optimiser.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        loss = _loss(params, x, y, val_w)
        better = loss < best_loss
        best = jax.tree.map(lambda new, old: jnp.where(better, new, old), params, best)
        return (params, state, best, jnp.where(better, loss, best_loss)), None

    initial = (params, state, params, jnp.asarray(jnp.inf))
    (_, _, best, best_loss), _ = jax.lax.scan(step, initial, None, length=steps)
    return best, best_loss


@partial(jax.jit, static_argnames=("hidden", "steps"))
def _fit_group(keys: jax.Array, x: jax.Array, y: jax.Array, train_w: jax.Array,
               val_w: jax.Array, *, hidden: int, steps: int) -> tuple[mlp.Params, jax.Array]:
    fit = partial(_fit_one, hidden=hidden, steps=steps)
    over_restarts = jax.vmap(fit, in_axes=(0, None, None, None, None))
    return jax.vmap(over_restarts)(keys, x, y, train_w, val_w)


def _validation_mask(n: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    count = max(1, round(n * VALIDATION_SHARE)) if n >= 5 else 0
    mask[rng.choice(n, size=count, replace=False)] = True
    return mask


def train_group(
    sets: list[TrainingSet], hidden: int, seed: int = 0, steps: int = STEPS,
    restarts: int = RESTARTS,
) -> list[mlp.Params]:
    """Trains one model per set (all with the same feature count); returns their params."""
    width = max(len(s.targets) for s in sets)
    inputs = sets[0].features.shape[1]
    rng = np.random.default_rng(seed)
    x = np.zeros((len(sets), width, inputs))
    y = np.zeros((len(sets), width))
    train_w = np.zeros((len(sets), width))
    val_w = np.zeros((len(sets), width))
    for i, s in enumerate(sets):
        n = len(s.targets)
        x[i, :n], y[i, :n] = s.features, s.targets
        validation = _validation_mask(n, rng)
        train_w[i, :n] = ~validation
        val_w[i, :n] = validation if validation.any() else 1.0
    keys = jax.random.split(jax.random.key(seed), len(sets) * restarts)
    keys = keys.reshape(len(sets), restarts)
    arrays = (jnp.asarray(a, mlp.DTYPE) for a in (x, y, train_w, val_w))
    best, losses = _fit_group(keys, *arrays, hidden=hidden, steps=steps)
    winners = np.asarray(jnp.argmin(losses, axis=1))
    return [
        jax.tree.map(lambda leaf, i=i: np.asarray(leaf[i, winners[i]]), best)
        for i in range(len(sets))
    ]
