"""Sample quality, the library behind `python -m gemgan.evaluate`.

FID, KID, precision/recall, density/coverage (Inception features), SWD
(pixels) and per-class FID, against one real set (`Evaluator`); the
evaluators a training config declares (`SampleEvaluator`,
`evaluators_for_config`); and whole runs or image folders
(`evaluate_run`, `evaluate_files`). See gemgan/evaluate.py for the command.
"""
import json
import os
import time
from typing import Optional

from absl import logging
import jax
import ml_collections
import numpy as np

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

  def __call__(self, fake_images: np.ndarray,
               fake_features: Optional[np.ndarray] = None) -> dict[str, float]:
    """Metrics of uint8 fake images [M, H, W, 3] (features computed unless given)."""
    if fake_features is None:
      _check_images(fake_images, "fake images")
      fake_features = self.extractor(fake_images)
    out = self._metrics(self.real_features, self._real_stats, fake_features, fake_images,
                        self._real_subset(len(fake_features)), self.real_images)
    if self.fid_inf_points:
      out["fid_inf"], out["fid_inf_slope"], out["fid_inf_points"] = fid_lib.fid_infinity(
          *self._real_stats, fake_features, self.fid_inf_points, seed=self.seed)
    return out

  def _metrics(self, real_f, real_stats, fake_f, fake_images, subset, real_images):
    idx, radii, dc_radii = subset
    t0 = time.time()
    out = {"fid": fid_lib.frechet_distance(*real_stats, *fid_lib.feature_statistics(fake_f))}
    size = min(self.kid_subset_size, len(real_f), len(fake_f))
    out["kid_mean"], out["kid_std"] = kid_lib.kernel_inception_distance(
        real_f, fake_f, self.kid_subsets, size)
    out["kid_subset_size"] = size
    out["precision"], out["recall"] = pr_lib.precision_recall(real_f[idx], fake_f, PR_K, radii)
    out["density"], out["coverage"] = dc_lib.density_coverage(real_f[idx], fake_f,
                                                               dc_lib.DEFAULT_K, dc_radii)
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
  return pr_lib.knn_radii(real_f, PR_K), pr_lib.knn_radii(real_f, dc_lib.DEFAULT_K)


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


class SampleEvaluator:
  """One evaluator declared in `config.evaluators`: metrics of its own fixed samples.

  `name` carries the sample count (`fid2k`: 2,000 samples; FID is biased by
  N, so numbers compare only at equal N, as StyleGAN2-ADA's `fid50k_full`).
  `run` logs `<name>/<metric>` and returns the metrics; which one picks the
  best checkpoint is the loop's policy (`config.best_metric`). Latents are
  fixed for the whole run, so successive evaluations differ only by G.
  """

  def __init__(self, name: str, num_samples: int, config: ml_collections.ConfigDict,
               num_classes: int, evaluator: Evaluator):
    from gemgan import steps  # pylint: disable=g-import-not-at-top
    self.name, self.num, self.evaluator = name, num_samples, evaluator
    self.batch = min(num_samples, config.batch_size)
    padded = -(-num_samples // self.batch) * self.batch
    self.z = np.asarray(steps.sample_latent(jax.random.PRNGKey(config.seed + 2), padded,
                                            config.model.latent_dim, config.latent_dist))
    self.labels = np.arange(padded, dtype=np.int32) % max(num_classes, 1)

  def generate(self, state, sample_fn) -> np.ndarray:
    """uint8 [num_samples, H, W, 3] from the state's (EMA) generator."""
    from gemgan import visualize  # pylint: disable=g-import-not-at-top
    out = [visualize.to_uint8(sample_fn(state.ema_params, state.generator.state,
                                        self.z[i:i + self.batch], self.labels[i:i + self.batch]))
           for i in range(0, len(self.z), self.batch)]
    return np.concatenate(out)[:self.num]

  def run(self, step: int, state, logger, sample_fn) -> dict[str, float]:
    t0 = time.time()
    metrics = self.evaluator(self.generate(state, sample_fn))
    logger.scalars(step, {f"{self.name}/{k}": v for k, v in metrics.items()
                          if not k.startswith("num_")
                          and k not in ("kid_subset_size", "coverage_expected")}, console=False)
    logging.info("%s step %d: FID %.2f  KID %.4f ± %.4f  P %.3f  R %.3f  D %.3f  C %.3f  "
                 "SWD %.2f  (%.0f s)", self.name, step, metrics["fid"], metrics["kid_mean"],
                 metrics["kid_std"], metrics["precision"], metrics["recall"],
                 metrics["density"], metrics["coverage"], metrics.get("swd_mean", float("nan")),
                 time.time() - t0)
    return metrics


def evaluators_for_config(config: ml_collections.ConfigDict, info,
                          evaluator: Optional[Evaluator] = None) -> list[SampleEvaluator]:
  """The run's `config.evaluators`, sharing one Inception network and real-feature set."""
  specs = {name: spec for name, spec in config.evaluators.items() if spec.every_kimg}
  if not specs:
    return []
  evaluator = evaluator or evaluator_for_config(config, info.images)
  num_classes = info.num_classes if config.model.conditional else 0
  return [SampleEvaluator(name, spec.num_samples, config, num_classes, evaluator)
          for name, spec in specs.items()]


def evaluate_files(real: str, fake: str, weights: str = "", batch_size: int = inception.BATCH_SIZE,
                   swd_size: int = 0, cache_dir: Optional[str] = "", seed: int = 0,
                   fid_inf_points: int = 0) -> dict:
  """Metrics of the images under `fake` against those under `real` (folders or zips).

  Inception features exactly as pytorch-fid computes them from files. SWD
  compares both sets resized to `swd_size` (0: the fake images' size).
  """
  extractor = inception.FeatureExtractor(weights, batch_size)

  def features(path):
    return extractor(image_files.iter_batches(path, inception.INPUT_SIZE, batch_size))

  stem = real_stats.cache_stem(os.path.basename(os.path.normpath(real)),
                               image_files.files_fingerprint(real), extractor.weights_id,
                               cache_dir or "")
  real_f = features(real) if cache_dir is None else real_stats.cached_features(
      stem, lambda: features(real))
  fake_f = features(fake)
  fake_u8 = image_files.load_uint8(fake, swd_size)
  real_u8 = image_files.load_uint8(real, swd_size or fake_u8.shape[1])
  ev = Evaluator(real_f, real_u8, extractor, seed=seed,
                 cache_stem=None if cache_dir is None else stem, fid_inf_points=fid_inf_points)
  out = ev(fake_u8, fake_features=fake_f)
  out["floor"] = ev.floor()
  out["precision_recall_on"] = PR_FEATURES
  return out


def evaluate_run(workdir: str, num_samples: int = 0, step: Optional[int] = None,
                 seed: int = 0, weights: str = "", batch_size: int = inception.BATCH_SIZE,
                 cache_dir: Optional[str] = "", fid_inf_points: int = 0) -> dict:
  """Metrics of a run's checkpoint (latest, or `step`) against its config's real data."""
  from gemgan import input_pipeline  # pylint: disable=g-import-not-at-top
  from gemgan import sample  # pylint: disable=g-import-not-at-top
  gen = sample.load_generator(workdir, step=step)
  config = gen.config
  num = num_samples or config.eval.num_samples
  info = input_pipeline.load_dataset(config)
  ev = evaluator_for_config(config, info.images, weights, cache_dir, batch_size,
                            fid_inf_points)
  t0 = time.time()
  fake = gen.generate(num, seed=seed, batch_size=batch_size)
  logging.info("Generated %d samples in %.1f s", num, time.time() - t0)
  out = {"workdir": os.path.abspath(workdir), "step": int(gen.step), "seed": seed}
  out.update(ev(fake))
  out["floor"] = ev.floor()
  out["precision_recall_on"] = PR_FEATURES
  if gen.num_classes:
    out["per_class"] = per_class_metrics(gen, ev, info.labels, info.class_names, seed,
                                         batch_size)
    out["class_accuracy"] = class_accuracy(gen, real_stats.fingerprint(info.images), num, seed)
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
