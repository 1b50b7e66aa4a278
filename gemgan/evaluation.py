"""Sample quality, the library behind `python -m gemgan.evaluate`.

FID, KID, precision/recall, density/coverage (Inception features) and SWD
(pixels) against one real set (`Evaluator`), per-class FID and class
accuracy; the evaluators a training config declares, by type from
`gemgan.evaluators` (`SampleEvaluator`, `evaluators_for_config`); and whole
runs or image folders through the same types (`evaluate_run`,
`evaluate_files`). See gemgan/evaluate.py for the command.
"""
import os
import time
from typing import Optional

from absl import logging
import jax
import ml_collections
import numpy as np

from gemgan import evaluators
from gemgan.evaluators import base
from gemgan.metrics import density_coverage as dc_lib
from gemgan.metrics import fid as fid_lib
from gemgan.metrics import gem_classifier
from gemgan.metrics import image_files
from gemgan.metrics import inception
from gemgan.metrics import kid as kid_lib
from gemgan.metrics import per_class as per_class_lib
from gemgan.metrics import precision_recall as pr_lib
from gemgan.metrics import real_stats
from gemgan.metrics import swd as swd_lib

PR_K = 3
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
# Kynkäänniemi et al. used VGG-16 features; these are on the FID network's.
PR_FEATURES = (f"FID InceptionV3 pool features (2048-d), k={PR_K} "
               f"(density/coverage k={dc_lib.DEFAULT_K})")


class Evaluator:
  """Metrics of generated images against one real set: build once, call per evaluation.

  Holds the real features (and their FID statistics and k-NN radii) and the
  real uint8 images (for SWD). `evaluator(fake_uint8)` -> dict of floats.
  Precision/recall, density/coverage and SWD use a fixed random subset of the
  real set of the fake set's size (all depend on N); FID and KID use every
  real image.
  """

  def __init__(self, real_features: np.ndarray, real_images: Optional[np.ndarray],
               extractor: inception.FeatureExtractor, *, seed: int = 0,
               kid_subsets: int = KID_SUBSETS, kid_subset_size: int = KID_SUBSET_SIZE,
               cache_stem: Optional[str] = None, fid_inf_points: int = 0):
    if real_images is not None and len(real_images) != len(real_features):
      raise ValueError(f"{len(real_images)} real images but {len(real_features)} features")
    self.extractor = extractor
    self.real_features = np.asarray(real_features, np.float32)
    self.real_images = real_images
    self.seed = seed
    self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
    self.cache_stem = cache_stem
    self.fid_inf_points = fid_inf_points
    self._real_stats = fid_lib.feature_statistics(self.real_features)
    self._radii = {}  # subset size -> (indices, P/R radii, density/coverage radii)

  @classmethod
  def from_images(cls, real_images: np.ndarray, *, name: str = "real", weights: str = "",
                  cache_dir: Optional[str] = "", batch_size: int = inception.BATCH_SIZE,
                  extractor: Optional[inception.FeatureExtractor] = None,
                  **kwargs) -> "Evaluator":
    """From uint8 real images [N, H, W, 3]; features cached under `cache_dir`.

    `name` makes the cache file readable (e.g. "gemstones_96px_center_crop");
    `cache_dir=None` disables caching, "" is the default location.
    """
    _check_images(real_images, "real images")
    extractor = extractor or inception.FeatureExtractor(weights, batch_size)
    features, stem = real_stats.real_features(real_images, extractor, name, cache_dir)
    return cls(features, real_images, extractor,
               cache_stem=None if cache_dir is None else stem, **kwargs)

  def _real_subset(self, n: int):
    """Fixed (per n) real subset for the N-dependent metrics, and its k-NN radii."""
    if n not in self._radii:
      total = len(self.real_features)
      idx = np.arange(total) if n >= total else np.sort(
          np.random.default_rng(self.seed).choice(total, n, replace=False))
      self._radii[n] = (idx,) + _radii(self.real_features[idx])
    return self._radii[n]

  def __call__(self, fake_images: Optional[np.ndarray],
               fake_features: Optional[np.ndarray] = None, swd: bool = True,
               fid_inf_points: Optional[int] = None) -> dict[str, float]:
    """Metrics of uint8 fake images [M, H, W, 3] (features computed unless given).

    `swd` False leaves the pixel SWD out; `fid_inf_points` overrides the
    evaluator's own (0: no FID_inf).
    """
    if fake_features is None:
      _check_images(fake_images, "fake images")
      fake_features = self.extractor(fake_images)
    out = self._metrics(self.real_features, self._real_stats, fake_features,
                        fake_images if swd else None, self._real_subset(len(fake_features)),
                        self.real_images)
    points = self.fid_inf_points if fid_inf_points is None else fid_inf_points
    if points:
      out["fid_inf"], out["fid_inf_slope"], out["fid_inf_points"] = fid_lib.fid_infinity(
          *self._real_stats, fake_features, points, seed=self.seed)
    return out

  def _metrics(self, real_f, real_stats, fake_f, fake_images, subset, real_images):
    idx, radii, dc_radii = subset
    t0 = time.time()
    out = {"fid": fid_lib.frechet_distance_to_features(*real_stats, fake_f)}
    size = min(self.kid_subset_size, len(real_f), len(fake_f))
    out["kid_mean"], out["kid_std"] = kid_lib.kernel_inception_distance(
        real_f, fake_f, self.kid_subsets, size)
    out["kid_subset_size"] = size
    out.update(dc_lib.prdc(real_f[idx], fake_f, PR_K, dc_lib.DEFAULT_K, (radii, dc_radii)))
    out["coverage_expected"] = dc_lib.expected_coverage(len(idx), len(fake_f))
    if real_images is not None and fake_images is not None:
      if real_images.shape[1:] == fake_images.shape[1:]:
        out.update(swd_lib.swd(real_images[idx], fake_images, self.seed))
      else:
        logging.warning("SWD skipped: real images %s, fake %s", real_images.shape[1:],
                        fake_images.shape[1:])
    out["num_real"], out["num_fake"] = len(real_f), len(fake_f)
    logging.info("Metrics of %d vs %d images in %.1f s", len(real_f), len(fake_f),
                 time.time() - t0)
    return out

  def floor(self) -> dict[str, float]:
    """The metrics between two disjoint random halves of the real set (cached)."""

    def compute():
      perm = np.random.default_rng(self.seed + 1).permutation(len(self.real_features))
      a, b = np.sort(perm[:len(perm) // 2]), np.sort(perm[len(perm) // 2:2 * (len(perm) // 2)])
      fa, fb = self.real_features[a], self.real_features[b]
      images = self.real_images
      return self._metrics(fa, fid_lib.feature_statistics(fa), fb,
                           None if images is None else images[b],
                           (np.arange(len(a)),) + _radii(fa),
                           None if images is None else images[a])

    if self.cache_stem is None:
      return compute()
    key = f"_floor_v2_s{self.seed}_kid{self.kid_subsets}x{self.kid_subset_size}.json"
    return real_stats.cached_json(self.cache_stem + key, compute)


def _radii(real_f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """k-NN radii of a real subset for precision/recall and for density/coverage."""
  return tuple(pr_lib.knn_radii_many(real_f, (PR_K, dc_lib.DEFAULT_K)))


def _check_images(images, what: str):
  if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
      or images.shape[-1] != 3:
    raise ValueError(f"{what}: expected a uint8 numpy array [N, H, W, 3], got "
                     f"{getattr(images, 'dtype', type(images))} {getattr(images, 'shape', '')}")
  if len(images) < 2:
    raise ValueError(f"{what}: need at least 2 images, got {len(images)}")


def dataset_name(config: ml_collections.ConfigDict) -> str:
  """Readable cache name of a config's real set, e.g. 'gemstones_96px_center_crop'."""
  from gemgan import datasets  # pylint: disable=g-import-not-at-top  (TFDS: only here)
  return datasets.cache_name(config.data)  # each dataset's own, see gemgan.datasets


def evaluator_for_config(config: ml_collections.ConfigDict, real_images: np.ndarray,
                         weights: str = "", cache_dir: Optional[str] = "",
                         batch_size: int = inception.BATCH_SIZE,
                         fid_inf_points: int = 0) -> Evaluator:
  """The Evaluator of a run's real data (weights: flag, else config.eval.weights, else default)."""
  if real_images is None:
    raise ValueError(f"dataset {config.data.name!r} gave no in-memory images "
                     "(input_pipeline info.images is None); evaluation needs them")
  return Evaluator.from_images(real_images, name=dataset_name(config),
                               weights=weights or config.eval.get("weights", ""),
                               cache_dir=cache_dir, batch_size=batch_size, seed=config.seed,
                               fid_inf_points=fid_inf_points)


class EvaluationError(ValueError):
  """A user's mistake (an empty image folder, ...): its message says it all."""


def reals_for_config(config: ml_collections.ConfigDict, info, weights: str = "",
                     cache_dir: Optional[str] = "", batch_size: int = inception.BATCH_SIZE,
                     evaluator: Optional[Evaluator] = None) -> base.Reals:
  """The run's real set (`info` from input_pipeline.load_dataset), Inception built lazily."""
  images = info.images
  factory = (lambda: evaluator) if evaluator is not None else (
      lambda: evaluator_for_config(config, images, weights, cache_dir, batch_size))
  return base.Reals(images, factory, getattr(info, "labels", None),
                    getattr(info, "class_names", None), seed=config.seed)


class SampleEvaluator:
  """One evaluator of `config.evaluators`, on fixed samples of the training generator.

  Its name usually carries the sample count (`fid2k`: 2,000 samples; FID is
  biased by N, so numbers compare only at equal N, as StyleGAN2-ADA's
  `fid50k_full`). `run` logs `<name>/<metric>` and returns the metrics;
  which one picks the best checkpoint is the loop's policy
  (`config.best_metric`). Latents are fixed for the whole run, so successive
  evaluations differ only by G.
  """

  def __init__(self, name: str, evaluator: base.EvaluatorType,
               config: ml_collections.ConfigDict, num_classes: int):
    self.name, self.evaluator, self.config = name, evaluator, config
    self.num_classes = num_classes
    self._z = {}  # sample count -> fixed latents

  def _latents(self, n: int) -> np.ndarray:
    from gemgan import steps  # pylint: disable=g-import-not-at-top
    if n not in self._z:
      c = self.config
      self._z[n] = np.asarray(steps.sample_latent(jax.random.PRNGKey(c.seed + 2), n,
                                                  c.model.latent_dim, c.latent_dist))
    return self._z[n]

  def fakes(self, state, sample_fn) -> base.Fakes:
    """The state's (EMA) generator on this evaluator's fixed latents."""
    from gemgan import visualize  # pylint: disable=g-import-not-at-top
    batch = self.config.batch_size

    def generate(n, labels):
      z = self._latents(n)
      if labels is None:
        labels = np.arange(n, dtype=np.int32) % max(self.num_classes, 1)
      out = []
      for i in range(0, n, batch):
        zb, yb = z[i:i + batch], labels[i:i + batch]
        pad = batch - len(zb)  # one batch shape: one compilation
        zb, yb = np.pad(zb, ((0, pad), (0, 0))), np.pad(yb, (0, pad))
        out.append(visualize.to_uint8(sample_fn(state.ema_params, state.generator.state, zb,
                                                yb))[:batch - pad])
      return np.concatenate(out)

    return base.Fakes(generate, self.num_classes, self.config.data.image_size)

  def run(self, step: int, state, logger, sample_fn) -> dict:
    t0 = time.time()
    metrics = self.evaluator(self.fakes(state, sample_fn))
    logger.scalars(step, {f"{self.name}/{k}": v for k, v in metrics.items()
                          if _is_scalar(v) and not k.startswith("num_")
                          and k not in ("kid_subset_size", "coverage_expected")}, console=False)
    logging.info("%s step %d: %s  (%.0f s)", self.name, step, self.evaluator.summary(metrics),
                 time.time() - t0)
    return metrics


def _is_scalar(v) -> bool:
  return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


def evaluators_for_config(config: ml_collections.ConfigDict, info,
                          evaluator: Optional[Evaluator] = None) -> list[SampleEvaluator]:
  """The run's switched-on `config.evaluators`, sharing one real set (and Inception pass)."""
  specs = {name: spec for name, spec in config.evaluators.items() if spec.every_kimg}
  if not specs:
    return []
  if info.images is None:  # said at the start, not at the first evaluation
    raise ValueError(f"dataset {config.data.name!r} gave no in-memory images "
                     "(input_pipeline info.images is None); evaluation needs them")
  reals = reals_for_config(config, info, evaluator=evaluator)
  num_classes = info.num_classes if config.model.conditional else 0
  return [SampleEvaluator(name, evaluators.build(name, spec, reals), config, num_classes)
          for name, spec in specs.items()]


def default_types(num_classes: int) -> tuple[str, ...]:
  """What `gemgan.evaluate` computes unless told: per-class ones for conditional runs."""
  return ("inception", "spectral") + (("per_class_fid", "class_accuracy") if num_classes
                                      else ())


def run_evaluators(types, reals: base.Reals, fakes: base.Fakes, num_samples: int,
                   fid_inf_points: int = 0) -> dict:
  """Metrics of every evaluator type in `types`, merged, with their floors under `floor`."""
  out, floor = {}, {}
  for type_name in types:
    cls = evaluators.get(type_name)
    if cls.NEEDS_CLASSES and not fakes.num_classes:
      raise EvaluationError(f"evaluator {type_name!r} needs a class-conditional generator")
    keys = {"fid_inf_points": fid_inf_points} if "fid_inf_points" in cls.KEYS else {}
    ev = evaluators.build(type_name, evaluators.spec(type_name, num_samples, **keys), reals)
    out.update(ev(fakes))
    floor.update(ev.floor())
  out["floor"] = floor
  if "inception" in types:
    out["precision_recall_on"] = PR_FEATURES
  return out


def image_count(path: str, flag: str) -> int:
  """How many images a folder or zip holds; EvaluationError naming `flag` if none."""
  try:
    return len(image_files.list_images(path))
  except (FileNotFoundError, ValueError) as e:
    raise EvaluationError(f"{flag}={path}: {e}") from None


def _with_progress(batches, total: int, what: str, every_secs: float = 30.0):
  """Passes batches through, logging done/total, images/s and ETA every `every_secs`."""
  start = last = time.time()
  done = 0
  for batch in batches:
    yield batch
    done += len(batch)
    if time.time() - last > every_secs or done == total:
      last = time.time()
      logging.info("Inception features of %s: %s", what,
                   inception.progress(done, total, last - start))


class FileFakes(base.Fakes):
  """Images of a folder or zip: Inception sees the files as pytorch-fid reads them."""

  def __init__(self, path: str, size: int, batch_size: int):
    self.path, self.batch_size, self.total = path, batch_size, image_count(path, "--fake")
    super().__init__(lambda n, labels: image_files.load_uint8(path, size))

  def images(self, n, labels=None):
    return super().images(self.total, labels)

  def features(self, extractor, n):
    return extractor(file_features_input(self.path, self.batch_size, self.total))


def file_features_input(path: str, batch_size: int, total: int):
  """The files' batches at Inception's input size, with progress lines."""
  return _with_progress(image_files.iter_batches(path, inception.INPUT_SIZE, batch_size), total,
                        path)


def evaluate_files(real: str, fake: str, weights: str = "", batch_size: int = inception.BATCH_SIZE,
                   swd_size: int = 0, cache_dir: Optional[str] = "", seed: int = 0,
                   fid_inf_points: int = 0, types=("inception", "spectral")) -> dict:
  """Metrics of the images under `fake` against those under `real` (folders or zips).

  Inception features exactly as pytorch-fid computes them from files. The
  pixel metrics (SWD, spectral) compare both sets resized to `swd_size` (0:
  the fake images' size).
  """
  num_real = image_count(real, "--real")
  fakes = FileFakes(fake, swd_size, batch_size)
  fake_u8 = fakes.images(0)
  real_u8 = image_files.load_uint8(real, swd_size or fake_u8.shape[1])

  def inception_evaluator():
    extractor = inception.FeatureExtractor(weights, batch_size)
    stem = real_stats.cache_stem(os.path.basename(os.path.normpath(real)),
                                 image_files.files_fingerprint(real), extractor.weights_id,
                                 cache_dir or "")
    compute = lambda: extractor(file_features_input(real, batch_size, num_real))  # noqa: E731
    real_f = compute() if cache_dir is None else real_stats.cached_features(stem, compute)
    return Evaluator(real_f, real_u8, extractor, seed=seed,
                     cache_stem=None if cache_dir is None else stem)

  reals = base.Reals(real_u8, inception_evaluator, seed=seed)
  return run_evaluators(types, reals, fakes, len(fake_u8), fid_inf_points)


def evaluate_run(workdir: str, num_samples: int = 0, step: Optional[int] = None,
                 seed: int = 0, weights: str = "", batch_size: int = inception.BATCH_SIZE,
                 cache_dir: Optional[str] = "", fid_inf_points: int = 0,
                 types=None) -> dict:
  """Metrics of a run's checkpoint (latest, or `step`) against its config's real data.

  `types`: evaluator types (None: `default_types`).
  """
  from gemgan import input_pipeline  # pylint: disable=g-import-not-at-top
  from gemgan import sampling  # pylint: disable=g-import-not-at-top
  gen = sampling.load_generator(workdir, step=step)
  config = gen.config
  num = num_samples or config.eval.num_samples
  info = input_pipeline.load_dataset(config)
  if info.images is None:
    raise EvaluationError(f"dataset {config.data.name!r} gave no in-memory images; "
                          "evaluation needs them")
  reals = reals_for_config(config, info, weights, cache_dir, batch_size)
  reals.seed = seed

  def generate(n, labels):
    t0 = time.time()
    images = gen.generate(n, seed=seed, batch_size=batch_size, labels=labels)
    logging.info("Generated %d samples in %.1f s", n, time.time() - t0)
    return images

  fakes = base.Fakes(generate, gen.num_classes, gen.image_shape[0])
  out = {"workdir": os.path.abspath(workdir), "step": int(gen.step), "seed": seed}
  out.update(run_evaluators(types or default_types(gen.num_classes), reals, fakes, num,
                            fid_inf_points))
  return out


def class_accuracy(gen, images_id: str, num_samples: int, seed: int = 0,
                   path: str = "") -> dict:
  """Top-1/top-5 of the gem classifier on conditional samples, classes in turn.

  Beside them: chance and the classifier's own accuracy on held-out real
  photos (what a perfect generator would score). Without a classifier trained
  on this data and resolution, says how to make one instead of a number.
  """
  size = gen.image_shape[0]
  path = path or gem_classifier.default_path(size)
  clf = gem_classifier.load(path)
  fix = gem_classifier.TRAIN_COMMAND.format(size=size)
  if clf is None:
    why = f"no gem classifier at {path}; train it with: {fix}"
  elif clf.num_classes != gen.num_classes or clf.meta.get("images_id") != images_id:
    why = (f"{path} was trained on other data ({clf.num_classes} classes, images "
           f"{clf.meta.get('images_id')}, this run {gen.num_classes} and {images_id}); "
           f"retrain it with: {fix}")
  else:
    labels = (np.arange(num_samples) % gen.num_classes).astype(np.int32)
    acc = clf.accuracy(gen.generate(num_samples, seed=seed, labels=labels), labels)
    return {**acc, "num_samples": num_samples, "chance": 1 / gen.num_classes,
            "real_held_out_top1": clf.meta["held_out_top1"],
            "real_held_out_top5": clf.meta["held_out_top5"]}
  logging.warning("Class accuracy skipped: %s", why)
  return {"skipped": why}


def per_class_metrics(gen, ev: Evaluator, real_labels: np.ndarray, class_names, seed: int = 0,
                      batch_size: int = inception.BATCH_SIZE) -> dict:
  """Per-class FID of a conditional Sampler `gen` and its floor (see `metrics.per_class`).

  Generates |B_c| samples of each class c (about half its photos), so the
  whole set costs about half the real set's size in Inception passes.
  """
  if real_labels is None or len(real_labels) != len(ev.real_features):
    raise ValueError("per-class FID needs one label per real feature")
  num_classes = gen.num_classes
  if int(np.max(real_labels)) >= num_classes:
    raise ValueError(f"real labels reach {int(np.max(real_labels))} but the generator has "
                     f"{num_classes} classes")
  counts = per_class_lib.fake_counts(real_labels, num_classes, seed)
  labels = np.repeat(np.arange(num_classes), counts).astype(np.int32)
  t0 = time.time()
  fake_f = ev.extractor(gen.generate(len(labels), seed=seed, batch_size=batch_size,
                                     labels=labels))
  out = per_class_lib.per_class_fid(ev.real_features, real_labels, fake_f, labels,
                                    num_classes, seed, class_names)
  logging.info("Per-class FID of %d classes (%d samples) in %.0f s: mean %.1f, floor %.1f",
               num_classes, len(labels), time.time() - t0, out["intra_fid"],
               out["intra_fid_floor"])
  return out
