"""The lightweight network: one hidden layer, pure functions of a params pytree.

`predict` maps normalised features to normalised log time. With at most 7
features and 8 hidden units a model has at most 8·(7+2)+1 = 73 parameters,
within the paper's bound of 75. The hidden units are ELUs: linear for large
inputs, so that predictions beyond the sizes seen in training continue the
trend in log–log space instead of saturating.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Params = dict[str, jax.Array]

HIDDEN = 8
"""Hidden units of the augmented model and of the same-size plain baseline."""


DTYPE = jnp.float32
"""Models compute in f32 whether or not JAX's x64 mode is on, so results do not depend
on what else the process imported."""


def init(key: jax.Array, inputs: int, hidden: int = HIDDEN) -> Params:
    first, second = jax.random.split(key)
    return {
        "w1": jax.random.normal(first, (inputs, hidden), DTYPE) / jnp.sqrt(inputs),
        "b1": jnp.zeros(hidden, DTYPE),
        "w2": jax.random.normal(second, (hidden,), DTYPE) / jnp.sqrt(hidden),
        "b2": jnp.zeros((), DTYPE),
    }


def predict(params: Params, features: jax.Array) -> jax.Array:
    """Normalised log time for one feature vector (vmap for a batch)."""
    hidden = jax.nn.elu(features @ params["w1"] + params["b1"])
    return hidden @ params["w2"] + params["b2"]


def parameter_count(inputs: int, hidden: int = HIDDEN) -> int:
    return inputs * hidden + hidden + hidden + 1
