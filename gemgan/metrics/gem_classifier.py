"""A gem-class classifier: does a conditional sample show the gem it was asked for?

ImageNet's classes say little about gems, so conditional runs are judged by a
small CNN trained here, in JAX, on the real photos at the run's resolution.
Its accuracy on held-out real photos (`held_out_split`: a fixed fifth of
every class) is the yardstick: a perfect generator's samples would score
about that, chance is 1 / num_classes. Weights are cached beside the
Inception ones (`default_path`), keyed by resolution and the data's
fingerprint; `python -m gemgan.train_classifier --image_size=32` makes them.
"""
import dataclasses
import json
import os
import time
from typing import Optional, Sequence

from absl import logging
from flax import traverse_util
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gemgan.metrics import inception

TRAIN_COMMAND = "python -m gemgan.train_classifier --image_size={size}"


class GemClassifier(nn.Module):
  """Three conv stages (BN, ReLU, 2x2 max-pool), global average pool, dropout, dense.

  Plain linen convs: gemgan's CPU-fast convs train it no faster (254 vs 251
  img/s at 32 px, batch 128, 2 cores), its convs having stride 1.
  """
  num_classes: int
  widths: Sequence[int] = (32, 64, 128)

  @nn.compact
  def __call__(self, x, *, train: bool):
    for i, w in enumerate(self.widths):
      for j in range(2):
        x = nn.Conv(w, (3, 3), use_bias=False, name=f"conv_{i}_{j}")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                 name=f"bn_{i}_{j}")(x))
      x = nn.max_pool(x, (2, 2), (2, 2))
    x = nn.Dropout(0.3, deterministic=not train)(x.mean(axis=(1, 2)))
    return nn.Dense(self.num_classes, name="head")(x)


def held_out_split(labels: np.ndarray, fraction: float = 0.2,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(train indices, held-out indices): a fixed `fraction` of every class held out."""
  labels = np.asarray(labels)
  rng = np.random.default_rng(seed)
  held = []
  for c in np.unique(labels):
    idx = rng.permutation(np.flatnonzero(labels == c))
    held.append(idx[:max(1, int(round(fraction * len(idx))))])
  held = np.sort(np.concatenate(held))
  return np.setdiff1d(np.arange(len(labels)), held), held


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
  """Share of rows whose label is among the k largest logits."""
  top = np.argsort(-np.asarray(logits), axis=1)[:, :k]
  return float(np.mean((top == np.asarray(labels)[:, None]).any(axis=1)))


def _to_float(images):
  return jnp.asarray(images, jnp.float32) / 127.5 - 1.0


def _augment(rng, x):
  """Random flips and up-to-1/8 integer translations (wrap-free, per batch)."""
  flip_rng, shift_rng = jax.random.split(rng)
  flip = jax.random.bernoulli(flip_rng, 0.5, (x.shape[0], 1, 1, 1))
  x = jnp.where(flip, x[:, :, ::-1], x)
  s = x.shape[1] // 8
  dy, dx = jax.random.randint(shift_rng, (2,), -s, s + 1)
  padded = jnp.pad(x, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")
  return jax.lax.dynamic_slice(padded, (0, s + dy, s + dx, 0), x.shape)


@dataclasses.dataclass
class Classifier:
  """Trained weights plus what they were trained on; `logits(uint8 images)`."""
  num_classes: int
  image_size: int
  variables: dict
  meta: dict

  def logits(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    model = GemClassifier(self.num_classes)
    apply = jax.jit(lambda v, x: model.apply(v, _to_float(x), train=False))
    return np.concatenate([np.asarray(apply(self.variables, images[i:i + batch_size]))
                           for i in range(0, len(images), batch_size)])

  def accuracy(self, images: np.ndarray, labels: np.ndarray) -> dict:
    logits = self.logits(images)
    return {"top1": topk_accuracy(logits, labels, 1), "top5": topk_accuracy(logits, labels, 5)}


def _train_step(model, tx):
  def loss_fn(params, stats, x, y, rng):
    aug_rng, drop_rng = jax.random.split(rng)
    logits, new = model.apply({"params": params, "batch_stats": stats}, _augment(aug_rng, x),
                              train=True, mutable=["batch_stats"], rngs={"dropout": drop_rng})
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new

  @jax.jit
  def step(params, stats, opt_state, x, y, rng):
    (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, x, y, rng)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new["batch_stats"], opt_state, loss
  return step


def train(images: np.ndarray, labels: np.ndarray, num_classes: int, *, epochs: int = 30,
          batch_size: int = 128, lr: float = 2e-3, seed: int = 0) -> Classifier:
  """Trains on uint8 `images` with AdamW and a cosine schedule; logs rate and ETA."""
  model = GemClassifier(num_classes)
  steps_per_epoch = max(1, len(images) // batch_size)
  total = epochs * steps_per_epoch
  tx = optax.adamw(optax.cosine_decay_schedule(lr, total), weight_decay=5e-4)
  rng = jax.random.PRNGKey(seed)
  variables = model.init(rng, _to_float(images[:2]), train=False)
  params, stats = variables["params"], variables["batch_stats"]
  opt_state, step = tx.init(params), _train_step(model, tx)
  x_all, y_all = _to_float(images), jnp.asarray(labels, jnp.int32)
  order, t0 = np.random.default_rng(seed), time.time()
  for epoch in range(epochs):
    perm = order.permutation(len(images))
    for i in range(steps_per_epoch):
      idx = perm[i * batch_size:(i + 1) * batch_size]
      rng, sub = jax.random.split(rng)
      params, stats, opt_state, loss = step(params, stats, opt_state, x_all[idx], y_all[idx],
                                            sub)
    done = (epoch + 1) / epochs
    rate = (epoch + 1) * steps_per_epoch * batch_size / (time.time() - t0)
    logging.info("classifier epoch %d/%d: loss %.3f, %.0f img/s, ETA %.0f s", epoch + 1, epochs,
                 float(loss), rate, (time.time() - t0) * (1 / done - 1))
  return Classifier(num_classes, images.shape[1], {"params": params, "batch_stats": stats}, {})


def default_path(image_size: int) -> str:
  """`~/.cache/gemgan/gem_classifier_<size>px.npz`, beside the Inception weights."""
  return os.path.join(os.path.dirname(inception.default_weights_path()),
                      f"gem_classifier_{image_size}px.npz")


def save(path: str, clf: Classifier) -> None:
  """Flat npz of the variables plus a JSON `meta` entry; written atomically."""
  flat = traverse_util.flatten_dict(jax.device_get(clf.variables), sep="/")
  meta = dict(clf.meta, num_classes=clf.num_classes, image_size=clf.image_size)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez(tmp, __meta__=np.array(json.dumps(meta)), **{k: np.asarray(v) for k, v in flat.items()})
  os.replace(tmp, path)


def load(path: str) -> Optional[Classifier]:
  """The classifier saved at `path`, or None when there is none."""
  if not os.path.isfile(path):
    return None
  with np.load(path) as f:
    meta = json.loads(str(f["__meta__"]))
    flat = {k: f[k] for k in f.files if k != "__meta__"}
  return Classifier(meta["num_classes"], meta["image_size"],
                    traverse_util.unflatten_dict(flat, sep="/"), meta)
