"""What every evaluator type builds on: its base class, the real set, the samples.

An evaluator is built once per run from its config entry and a `Reals`, and
called with a `Fakes` at each evaluation: the training loop's fixed latents
through the current generator, a restored checkpoint (`gemgan.evaluate
--workdir`), or a folder of images (`--real/--fake`). Expensive real-set
work (Inception features, their k-NN radii) lives in `Reals`, built lazily
and shared by every evaluator of the run.
"""
from typing import Callable, Optional

import ml_collections
import numpy as np

from gemgan import config_lib


class EvaluatorType:
  """Base of an evaluator type: `metrics = evaluator(fakes)`.

  KEYS: its own config keys and their defaults (beside type, every_kimg,
    num_samples); a missing key takes its default, a value of another kind
    is refused. BEST_METRICS: what it reports where lower is better, the
    metrics `config.best_metric` may name. NEEDS_CLASSES: refused for an
    unconditional model.
  """
  KEYS: dict = {}
  BEST_METRICS: tuple = ()
  NEEDS_CLASSES = False

  def __init__(self, name: str, spec: ml_collections.ConfigDict, reals: "Reals"):
    self.name, self.spec, self.reals = name, spec, reals
    self.num_samples = int(spec.num_samples)

  def option(self, key: str):
    """The spec's `key`, else its default from KEYS."""
    return self.spec.get(key, self.KEYS[key])

  @classmethod
  def check(cls, spec: ml_collections.ConfigDict, key: str) -> None:
    """Raises ConfigError naming `config.<key>.<k>` for a bad type-specific key."""
    for k, default in cls.KEYS.items():
      if k in spec:
        v = spec[k]
        kind = (bool,) if isinstance(default, bool) else (
            (int, float) if isinstance(default, (int, float)) else (type(default),))
        ok = isinstance(v, kind) and (isinstance(default, bool) or not isinstance(v, bool))
        require(ok, f"{key}.{k}", f"must be {type(default).__name__} like its default "
                f"{default!r}, got {v!r}")

  def __call__(self, fakes: "Fakes") -> dict:
    raise NotImplementedError

  def floor(self) -> dict:
    """The same metrics between two halves of the real set ({}: none)."""
    return {}

  def summary(self, metrics: dict) -> str:
    """A short console line of the metrics."""
    return "  ".join(f"{k} {metrics[k]:.4g}" for k in self.BEST_METRICS if k in metrics)


def require(cond: bool, key: str, message: str) -> None:
  """ConfigError `config.<key>: <message>` unless `cond`."""
  if not cond:
    raise config_lib.ConfigError(f"config.{key}: {message}")


class Reals:
  """The real set: uint8 images, labels, and a lazily built, shared Inception Evaluator.

  `inception_factory()` builds the `gemgan.evaluation.Evaluator` on first
  use only, so a run of cheap pixel metrics never loads Inception.
  """

  def __init__(self, images: Optional[np.ndarray], inception_factory: Callable,
               labels: Optional[np.ndarray] = None, class_names=None, seed: int = 0):
    self.images, self.labels, self.class_names, self.seed = images, labels, class_names, seed
    self._factory, self._inception, self._cache = inception_factory, None, {}

  def inception(self):
    if self._inception is None:
      self._inception = self._factory()
    return self._inception

  def cached(self, key: str, compute: Callable):
    """`compute()` once per run (e.g. the real spectrum), shared by evaluators."""
    if key not in self._cache:
      self._cache[key] = compute()
    return self._cache[key]


class Fakes:
  """Samples to evaluate: `images(n)` is the first n of one fixed set per evaluation.

  `generate(n, labels)` -> uint8 [n, H, W, 3]; without labels the result is
  cached and cut, so the evaluators of one evaluation share the samples.
  """

  def __init__(self, generate: Callable, num_classes: int = 0, image_size: int = 0):
    self._generate, self.num_classes, self.image_size = generate, num_classes, image_size
    self._images = None

  def images(self, n: int, labels: Optional[np.ndarray] = None) -> np.ndarray:
    if labels is not None:
      return self._generate(n, labels)
    if self._images is None or len(self._images) < n:
      self._images = self._generate(n, None)
    return self._images[:n]

  def features(self, extractor, n: int) -> np.ndarray:
    """Inception features of `images(n)` (a folder of files overrides this)."""
    return extractor(self.images(n))


class AsSampler:
  """A Fakes seen as a `gemgan.sampling.Sampler` by the helpers that take one."""

  def __init__(self, fakes: Fakes):
    self.fakes, self.num_classes = fakes, fakes.num_classes
    self.image_shape = (fakes.image_size, fakes.image_size, 3)

  def generate(self, num, seed=0, batch_size=64, labels=None):
    del seed, batch_size  # the Fakes fixes its own latents
    return self.fakes.images(num, None if labels is None else np.asarray(labels, np.int32))
