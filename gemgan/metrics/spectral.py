"""Spectral artefact score: the radially averaged power spectrum of samples vs photos.

Checkerboards and plaid (transposed convolutions, aliased upsampling) put
power at high spatial frequencies that photos lack; Durall et al. (CVPR 2020,
"Watch your Up-Convolution") and Dzanic et al. (NeurIPS 2020) show it in the
azimuthally averaged spectrum. Here, per image set:

  g_i        = luminance of image i (ITU-R 601: 0.299 R + 0.587 G + 0.114 B,
               in [0, 1]) minus its own mean
  P(k)       = mean over images i and over frequencies (ky, kx) with
               round(sqrt(ky^2 + kx^2)) = k of |FFT(g_i)[ky, kx]|^2 / (H W)
               (ky, kx in cycles per image; k = 1 .. round(sqrt(2) H / 2),
               the corner bins hold the Nyquist checkerboard)
  S(k)       = log10 P(k)

and the score between two sets is the mean absolute difference of the log
spectra over the K radii, in decades of power:

  spectral_distance = (1 / K) sum_k |S_fake(k) - S_real(k)|

Its floor is the same between two disjoint halves of the real set. numpy FFTs
of uint8 images: seconds for thousands of 96 px images, no network.
"""
from typing import Optional

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114])
_BATCH = 256  # images per FFT call: bounds the float64 buffers


def radius_bins(height: int, width: int) -> np.ndarray:
  """Integer radius (cycles per image, rounded) of each FFT bin [H, W], unshifted."""
  ky = np.fft.fftfreq(height) * height
  kx = np.fft.fftfreq(width) * width
  return np.rint(np.hypot(ky[:, None], kx[None, :])).astype(np.int64)


def _power(images: np.ndarray) -> np.ndarray:
  """Sum over images of |FFT|^2 / (H W) of the mean-removed luminance: [H, W]."""
  total = 0.0
  for i in range(0, len(images), _BATCH):
    g = images[i:i + _BATCH].astype(np.float64) @ LUMA / 255.0
    g -= g.mean(axis=(1, 2), keepdims=True)
    f = np.fft.fft2(g)
    total = total + (np.abs(f) ** 2).sum(0) / (g.shape[1] * g.shape[2])
  return total


def radial_power(images: np.ndarray) -> np.ndarray:
  """P(k) for k = 1 .. K (index 0 is k = 1) of uint8 images [N, H, W, 3]."""
  if images.ndim != 4 or images.shape[-1] != 3 or len(images) < 1:
    raise ValueError(f"expected images [N, H, W, 3] with N >= 1, got {images.shape}")
  r = radius_bins(*images.shape[1:3]).ravel()
  power = _power(images).ravel() / len(images)
  sums = np.bincount(r, weights=power)
  counts = np.bincount(r)
  return sums[1:] / counts[1:]  # every k in 1..K has at least one bin


def log_spectrum(images: np.ndarray) -> np.ndarray:
  """S(k) = log10 P(k), k = 1 .. K; a power of exactly 0 gives -300, not -inf."""
  return np.log10(np.maximum(radial_power(images), 1e-300))


def distance(log_a: np.ndarray, log_b: np.ndarray) -> float:
  """Mean absolute difference of two log spectra (decades of power)."""
  if log_a.shape != log_b.shape:
    raise ValueError(f"spectra of different image sizes: {log_a.shape} vs {log_b.shape}")
  return float(np.mean(np.abs(log_a - log_b)))


def floor(real: np.ndarray, seed: int = 0) -> float:
  """spectral_distance between two disjoint random halves of the real set."""
  perm = np.random.default_rng(seed + 1).permutation(len(real))
  half = len(real) // 2
  if half < 1:
    raise ValueError(f"the floor needs at least 2 real images, got {len(real)}")
  return distance(log_spectrum(real[np.sort(perm[:half])]),
                  log_spectrum(real[np.sort(perm[half:2 * half])]))


def spectral(real: np.ndarray, fake: np.ndarray,
             real_log: Optional[np.ndarray] = None) -> dict:
  """`spectral_distance` and both spectra (for the report's plot) of fake vs real."""
  if real.shape[1:] != fake.shape[1:]:
    raise ValueError(f"real images {real.shape[1:]} and fake {fake.shape[1:]} differ in size")
  real_log = log_spectrum(real) if real_log is None else real_log
  fake_log = log_spectrum(fake)
  size = real.shape[1]
  return {"spectral_distance": distance(fake_log, real_log),
          "spectrum": {"frequency": (np.arange(1, len(real_log) + 1) / size).tolist(),
                       "real": real_log.tolist(), "fake": fake_log.tolist()}}
