"""Per-class FID of a class-conditional generator, with a per-class real-vs-real floor.

Each class' real features are split into two fixed random halves, A and B.
The class' FID is FID(A_c, fake_c) with as many fakes as B_c holds, and its
floor is FID(A_c, B_c): the same reference and the same N, so the floor is
exactly what a perfect generator would score. With ~50 photos a class (25
against 25 in 2048 dimensions) both are dominated by small-N bias and very
noisy: compare a class' FID with its own floor, and runs only by the mean
over classes ("intra-FID", Miyato & Koyama 2018) at equal N.
"""
from typing import Optional, Sequence

import numpy as np



def fid_few_samples(x: np.ndarray, y: np.ndarray) -> float:
  """FID of two feature sets with fewer samples than dimensions, exactly and fast.

  With centred Xc [n, D], Yc [m, D], S_x = Xc'Xc/(n-1), S_y = Yc'Yc/(m-1), the
  nonzero eigenvalues of S_x S_y are the squared singular values of
  Xc Yc' / sqrt((n-1)(m-1)), so Tr (S_x S_y)^(1/2) is that [n, m] matrix's
  nuclear norm: no 2048 x 2048 sqrtm (seconds each, and ill-conditioned at
  rank 24), the same value as pytorch-fid's formula up to its sqrtm error.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) < 2:
    raise ValueError(f"need features [n >= 2, D] and [m >= 2, D], got {x.shape}, {y.shape}")
  xc, yc = x - x.mean(0), y - y.mean(0)
  diff = x.mean(0) - y.mean(0)
  cross = np.linalg.svd(xc @ yc.T, compute_uv=False).sum() / np.sqrt((len(x) - 1) * (len(y) - 1))
  return float(diff @ diff + (xc * xc).sum() / (len(x) - 1) + (yc * yc).sum() / (len(y) - 1)
               - 2 * cross)


def split_halves(labels: np.ndarray, num_classes: int,
                 seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
  """Per class, indices of a random half A and the disjoint rest B (|B| <= |A|)."""
  labels = np.asarray(labels)
  rng = np.random.default_rng(seed)
  halves_a, halves_b = [], []
  for c in range(num_classes):
    idx = rng.permutation(np.flatnonzero(labels == c))
    if len(idx) < 4:
      raise ValueError(f"class {c} has {len(idx)} real images; per-class FID needs >= 4")
    half = len(idx) - len(idx) // 2
    halves_a.append(np.sort(idx[:half]))
    halves_b.append(np.sort(idx[half:]))
  return halves_a, halves_b


def fake_counts(labels: np.ndarray, num_classes: int, seed: int = 0) -> np.ndarray:
  """Fakes to generate per class so each class compares at its floor's N (|B_c|)."""
  return np.array([len(b) for b in split_halves(labels, num_classes, seed)[1]])


def per_class_fid(real_f: np.ndarray, real_labels: np.ndarray, fake_f: np.ndarray,
                  fake_labels: np.ndarray, num_classes: int, seed: int = 0,
                  class_names: Optional[Sequence[str]] = None) -> dict:
  """Per-class FID and floor, their means over classes, and the floor's spread.

  Returns {"intra_fid", "intra_fid_floor", "floor_std_over_classes",
  "classes": {name: {"fid", "floor", "num_fake"}}}.
  """
  real_f, fake_f = np.asarray(real_f), np.asarray(fake_f)
  if len(real_f) != len(real_labels) or len(fake_f) != len(fake_labels):
    raise ValueError(f"features and labels differ in length: real {len(real_f)} vs "
                     f"{len(real_labels)}, fake {len(fake_f)} vs {len(fake_labels)}")
  names = list(class_names) if class_names else [str(c) for c in range(num_classes)]
  halves_a, halves_b = split_halves(real_labels, num_classes, seed)
  classes = {}
  for c, (a, b) in enumerate(zip(halves_a, halves_b)):
    fake_c = fake_f[np.asarray(fake_labels) == c]
    if len(fake_c) < 2:
      raise ValueError(f"class {names[c]!r}: {len(fake_c)} fake samples; need >= 2")
    classes[names[c]] = {"fid": fid_few_samples(real_f[a], fake_c),
                         "floor": fid_few_samples(real_f[a], real_f[b]),
                         "num_fake": int(len(fake_c))}
  fids = np.array([v["fid"] for v in classes.values()])
  floors = np.array([v["floor"] for v in classes.values()])
  return {"intra_fid": float(fids.mean()), "intra_fid_floor": float(floors.mean()),
          "floor_std_over_classes": float(floors.std()), "classes": classes}
