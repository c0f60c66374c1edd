"""Training many tiny models at once: optax Adam, seeded restarts, best on validation.

The loss is a smoothed absolute error of normalised log time. Every model trains
in one jitted call, whatever its feature count: rows are padded to a common count
and masked, features to a common width with zero columns (whose weights start at 0
and, their gradient being 0, stay there until they are cut off), and restarts and
models are vmapped. Training many models is dominated by the steps' fixed cost, so
one call for all is much faster than one per feature width. Each restart keeps the
parameters of its lowest validation loss seen during training (early stopping by
checkpoint; the validation loss comes from the same forward pass as the gradient),
and the restart with the lowest validation loss wins. Each model's validation rows
and initial weights come from its own random stream (the seed and the model's name),
so a model does not change when others are added, removed or re-measured. Held-out
test rows never enter this module.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from annc.predictor import mlp

STEPS = 3000
RESTARTS = 4
LEARNING_RATE = 0.01
VALIDATION_SHARE = 0.2


@dataclass(frozen=True)
class TrainingSet:
    """One model's rows, already normalised: features [n, d], targets [n]."""

    features: np.ndarray
    targets: np.ndarray


def _weighted(errors: jax.Array, weights: jax.Array) -> jax.Array:
    return jnp.sum(weights * errors) / jnp.maximum(jnp.sum(weights), 1.0)


def _loss(params: mlp.Params, x: jax.Array, y: jax.Array, train_w: jax.Array,
          val_w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Weighted means of a smoothed absolute error of log time over the training rows
    and, as auxiliary output, over the validation rows.

    Absolute rather than squared: a few measurements disturbed by the machine (a
    page fault storm, a descheduled thread) should not pull the fit, and MAPE, the
    error that matters, is itself an absolute error."""
    residual = jax.vmap(mlp.predict, in_axes=(None, 0))(params, x) - y
    smooth_abs = jnp.sqrt(residual**2 + 1e-4)
    return _weighted(smooth_abs, train_w), _weighted(smooth_abs, val_w)


_Carry = tuple[mlp.Params, optax.OptState, mlp.Params, jax.Array]
"""What one training step carries: parameters, optimiser state, the best parameters
and their validation loss."""


def _fit_one(key: jax.Array, x: jax.Array, y: jax.Array, train_w: jax.Array,
             val_w: jax.Array, inputs: jax.Array, *, hidden: int,
             steps: int) -> tuple[mlp.Params, jax.Array]:
    """One restart of one model; `inputs` masks the feature columns it really has."""
    params = mlp.init(key, x.shape[1], hidden)
    scale = jnp.sqrt(x.shape[1] / jnp.maximum(jnp.sum(inputs), 1.0))
    params["w1"] = params["w1"] * (inputs * scale)[:, None]
    schedule = optax.cosine_decay_schedule(LEARNING_RATE, steps, alpha=0.05)
    optimiser = optax.adam(schedule)
    state = optimiser.init(params)

    def step(carry: _Carry, _: None) -> tuple[_Carry, None]:
        params, state, best, best_loss = carry
        grads, loss = jax.grad(_loss, has_aux=True)(params, x, y, train_w, val_w)
        better = loss < best_loss  # the validation loss of these params, before the step
        best = jax.tree.map(lambda now, old: jnp.where(better, now, old), params, best)
        updates, state = optimiser.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state, best, jnp.where(better, loss, best_loss)), None

    initial = (params, state, params, jnp.asarray(jnp.inf))
    (_, _, best, best_loss), _ = jax.lax.scan(step, initial, None, length=steps)
    return best, best_loss


@partial(jax.jit, static_argnames=("hidden", "steps"))
def _fit_group(keys: jax.Array, x: jax.Array, y: jax.Array, train_w: jax.Array,
               val_w: jax.Array, inputs: jax.Array, *, hidden: int,
               steps: int) -> tuple[mlp.Params, jax.Array]:
    fit = partial(_fit_one, hidden=hidden, steps=steps)
    over_restarts = jax.vmap(fit, in_axes=(0, None, None, None, None, None))
    return jax.vmap(over_restarts)(keys, x, y, train_w, val_w, inputs)


def _validation_mask(n: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    count = max(1, round(n * VALIDATION_SHARE)) if n >= 5 else 0
    mask[rng.choice(n, size=count, replace=False)] = True
    return mask


def stream(name: str) -> int:
    """A stable number for a model's name, which picks its random stream."""
    return zlib.crc32(name.encode())


def train_group(
    sets: list[TrainingSet], hidden: int, seed: int = 0, steps: int = STEPS,
    restarts: int = RESTARTS, names: Sequence[str] | None = None,
) -> list[mlp.Params]:
    """Trains one model per set, in one call; returns their params (`w1` with as many
    rows as the set has features). `names` (default: the sets' positions) pick each
    model's random stream: the same name, rows and seed give the same model whatever
    else is trained beside it."""
    names = [str(i) for i in range(len(sets))] if names is None else list(names)
    if len(names) != len(sets):
        raise ValueError(f"{len(names)} names for {len(sets)} training sets")
    width = max(len(s.targets) for s in sets)
    columns = [s.features.shape[1] for s in sets]
    x = np.zeros((len(sets), width, max(columns)))
    y = np.zeros((len(sets), width))
    train_w = np.zeros((len(sets), width))
    val_w = np.zeros((len(sets), width))
    inputs = np.zeros((len(sets), max(columns)))
    for i, s in enumerate(sets):
        n = len(s.targets)
        x[i, :n, :columns[i]], y[i, :n] = s.features, s.targets
        inputs[i, :columns[i]] = 1.0
        validation = _validation_mask(n, np.random.default_rng([seed, stream(names[i])]))
        train_w[i, :n] = ~validation
        val_w[i, :n] = validation if validation.any() else 1.0
    root = jax.random.key(seed)
    keys = jnp.stack([jax.random.split(jax.random.fold_in(root, stream(name)), restarts)
                      for name in names])
    arrays = (jnp.asarray(a, mlp.DTYPE) for a in (x, y, train_w, val_w, inputs))
    best, losses = _fit_group(keys, *arrays, hidden=hidden, steps=steps)
    winners = np.asarray(jnp.argmin(losses, axis=1))
    chosen = [jax.tree.map(lambda leaf, i=i: np.asarray(leaf[i, winners[i]]), best)
              for i in range(len(sets))]
    for params, count in zip(chosen, columns, strict=True):
        params["w1"] = params["w1"][:count]
    return chosen
