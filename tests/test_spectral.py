"""The spectral artefact score: known spectra, a checkerboard, the real-vs-real floor, the plot."""
import json

import numpy as np
import pytest

from gemgan import evaluation
from gemgan import report
from gemgan.datasets import gem_render
from gemgan.metrics import spectral


@pytest.fixture(scope="module")
def gems():
  """128 synthetic gem pictures at 32 px: real-like spectra, two disjoint halves."""
  images, _ = gem_render.render(0, 0, 128, 32)
  return images


def _grey(values: np.ndarray) -> np.ndarray:
  """uint8 [N, H, W, 3] with R = G = B = values (so the luminance is values / 255)."""
  return np.repeat(np.clip(np.rint(values), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def test_a_cosine_puts_its_power_in_its_radius_bin():
  size, k0, amp = 16, 3, 100.0
  x = np.arange(size)
  image = _grey(128 + amp * np.cos(2 * np.pi * k0 * x / size)[None, None, :].repeat(size, 1))
  power = spectral.radial_power(image)
  # By hand: the cosine's two FFT peaks (0, +-k0) hold (H W a / 2)^2 each, a = amp / 255;
  # divided by H W and averaged over the frequencies of the k0 ring.
  ring = sum(1 for ky in range(-size // 2, size // 2) for kx in range(-size // 2, size // 2)
             if round(np.hypot(ky, kx)) == k0)
  want = 2 * (size * size * (amp / 255) / 2) ** 2 / (size * size) / ring
  assert np.argmax(power) == k0 - 1  # index 0 is k = 1
  assert power[k0 - 1] == pytest.approx(want, rel=0.01)
  assert np.delete(power, k0 - 1).max() < 1e-3 * want  # only uint8 rounding elsewhere
  # The corner radius (a Nyquist checkerboard) is the last bin.
  assert len(power) == round(np.hypot(size / 2, size / 2))


def test_a_checkerboard_raises_the_distance_far_above_clean_samples(gems):
  a, b = gems[:64], gems[64:]
  checker = (np.indices((32, 32)).sum(0) % 2 * 2 - 1)[None, :, :, None]
  dirty = np.clip(b.astype(int) + 16 * checker, 0, 255).astype(np.uint8)
  clean = spectral.spectral(a, b)
  plaid = spectral.spectral(a, dirty)
  assert plaid["spectral_distance"] > 3 * clean["spectral_distance"]
  # The picture: the samples' corner bin sits over a decade above the photos'.
  assert plaid["spectrum"]["fake"][-1] - plaid["spectrum"]["real"][-1] > 1.0
  assert abs(clean["spectrum"]["fake"][-1] - clean["spectrum"]["real"][-1]) < 0.3
  assert plaid["spectrum"]["frequency"][-1] == pytest.approx(23 / 32)


def test_two_halves_of_a_real_set_score_near_the_floor(gems):
  floor = spectral.floor(gems, seed=0)
  perm = np.random.default_rng(1).permutation(len(gems))
  by_hand = np.mean(np.abs(spectral.log_spectrum(gems[np.sort(perm[:64])])
                           - spectral.log_spectrum(gems[np.sort(perm[64:])])))
  assert floor == pytest.approx(by_hand, rel=1e-12)
  assert floor < 0.1  # a tenth of a decade: sampling noise of 64 pictures
  other, _ = gem_render.render(1, 0, 64, 32)  # new pictures of the same kind
  assert spectral.spectral(gems, other)["spectral_distance"] < 2 * floor


def test_files_mode_reports_the_score_and_floor_without_inception(gems, tmp_path, monkeypatch):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from gemgan.metrics import inception  # pylint: disable=g-import-not-at-top

  def no_inception(*args, **kwargs):
    raise AssertionError("the spectral evaluator must not load Inception")

  monkeypatch.setattr(inception, "FeatureExtractor", no_inception)
  for name, images in (("real", gems[:40]), ("fake", gems[64:80])):
    (tmp_path / name).mkdir()
    for i, im in enumerate(images):
      Image.fromarray(im).save(tmp_path / name / f"{i:03d}.png")  # sorted = in order
  out = evaluation.evaluate_files(str(tmp_path / "real"), str(tmp_path / "fake"),
                                  types=("spectral",))
  want = spectral.spectral(gems[:40], gems[64:80])["spectral_distance"]
  assert out["spectral_distance"] == pytest.approx(want, rel=1e-9)
  assert out["floor"]["spectral_distance"] == pytest.approx(spectral.floor(gems[:40]))
  assert json.loads(json.dumps(out)) == out


def test_the_report_plots_both_spectra(tmp_path):
  wd = tmp_path / "run"
  (wd / "eval").mkdir(parents=True)
  spectrum = {"frequency": [0.25, 0.5], "real": [-1.0, -2.0], "fake": [-1.0, -0.5]}
  (wd / "eval" / "step_5.json").write_text(json.dumps(
      {"step": 5, "spectral_distance": 0.75, "spectrum": spectrum,
       "floor": {"spectral_distance": 0.05}}))
  page = report.render_page([report.load_run(str(wd))])
  assert "<h3>Power spectrum</h3>" in page and 'alt="power spectrum"' in page
  assert "<td>spectral_distance</td><td>0.75</td><td>0.05</td>" in page
  assert report.spectrum_png(None) is None and report.spectrum_png(spectrum)[:4] == b"\x89PNG"
