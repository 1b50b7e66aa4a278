"""Training-health signals that need no eye, and the alarms they raise.

- `overfit_rt`: ADA's r_t = E[sign(D(real))] (Karras et al. 2020). Near 0
  while the critic cannot tell training reals from fakes; towards 1 as it
  memorises them (ADA targets 0.6). Meaningful when the decision boundary is
  at 0 (non-saturating and hinge losses); a Wasserstein critic's scores have a
  free offset, so there r_t says little.
- `sample_diversity`: how different a batch of samples are from each other,
  as a fraction of their spread; a collapsed generator gives ~0.
- `check_alarms`: host-side thresholds on both, as warning strings for the log.
"""
import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp


def overfit_rt(d_real_logits: jax.Array) -> jax.Array:
  """E[sign(D(x))] over the critic's outputs on real images, in [-1, 1]."""
  return jnp.mean(jnp.sign(d_real_logits))


def sample_diversity(images: jax.Array) -> jax.Array:
  """Between-sample share of a batch's variance, in [0, 1].

  diversity = mean over positions p of Var_i[x_i,p]  /  Var_{i,p}[x_i,p]

  where i runs over the B samples and p over pixels and channels. The
  numerator is half the mean squared pairwise L2 distance per value,
  mean_{i,j} ||x_i - x_j||^2 / (2 D) (all ordered pairs, i = j included); the
  denominator is the same quantity for the batch's values scattered at random
  over samples and positions. So 0 = every sample identical (collapse),
  ~1 = samples as unlike each other as i.i.d. noise with the same values
  (about (B - 1) / B of it, since i = j pairs count). Invariant to x -> a x + b,
  to resolution and to the value range. A constant batch gives 0.
  """
  x = jnp.asarray(images, jnp.float32).reshape(images.shape[0], -1)
  between = jnp.mean(jnp.var(x, axis=0))
  total = jnp.var(x)
  # The law of total variance gives between <= total; the guard is for 0 / 0.
  return jnp.where(total > 0, between / jnp.where(total > 0, total, 1.0), 0.0)


def check_alarms(metrics: Mapping[str, Any], overfit_threshold: float | None,
                 collapse_threshold: float | None) -> list[str]:
  """Warnings for signals past their thresholds (a None threshold disables one).

  Reads `metrics["overfit_rt"]` (alarm when above `overfit_threshold`) and
  `metrics["sample_diversity"]` (alarm when below `collapse_threshold`), where
  present; a non-finite signal also alarms. `metrics["step"]` names the step.
  Values may be Python or NumPy/JAX scalars (host-side: call outside jit).
  """
  step = metrics.get("step", "?")
  warnings = []

  def check(name, threshold, high_is_bad, what, hint):
    if threshold is None or name not in metrics:
      return
    value = float(metrics[name])
    if not math.isfinite(value):
      warnings.append(f"step {step}: {name} is {value}")
    elif (value > threshold) if high_is_bad else (value < threshold):
      warnings.append(f"step {step}: {what}: {name} = {value:.4g} "
                      f"{'>' if high_is_bad else '<'} threshold {threshold:g}; {hint}")

  check("overfit_rt", overfit_threshold, True, "critic overfitting",
        "stronger augmentation (augment.policy) or more regularisation may help")
  check("sample_diversity", collapse_threshold, False, "possible mode collapse",
        "samples are nearly identical")
  return warnings
