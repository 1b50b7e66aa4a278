"""The run report: a fake workdir -> one self-contained HTML page; and in a real browser."""
import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
from PIL import Image
import pytest

from gemgan import losses
from gemgan import report


def _png(rng, size=64) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
  return buf.getvalue()


@pytest.fixture
def fake_workdir(tmp_path):
  """A run as train.py leaves it mid-training: grids, a cut-off JSONL line, an eval."""
  rng = np.random.default_rng(0)
  wd = tmp_path / "run_a"
  (wd / "samples").mkdir(parents=True)
  grids = {}
  for step in (100, 200, 300):
    grids[step] = _png(rng)
    (wd / "samples" / f"step_{step}.png").write_bytes(grids[step])
  config = {"loss": "hinge", "data": {"name": "synthetic_gems", "image_size": 32,
                                      "data_dir": str(tmp_path / "no_tfds")},
            "monitor": {"overfit_threshold": 0.6, "collapse_threshold": 0.05}}
  (wd / "config.json").write_text(json.dumps(config))
  rows = [{"step": s, "d_loss": 1.0 / s, "g_loss": 0.5, "overfit_rt": rt}
          for s, rt in ((100, 0.3), (200, 0.5), (300, 0.8))] + [{"step": 300, "sample_diversity": 0.01}]
  (wd / "metrics.jsonl").write_text("\n".join(map(json.dumps, rows)) + '\n{"step": 4')
  (wd / "eval").mkdir()
  (wd / "eval" / "step_300.json").write_text(json.dumps(
      {"step": 300, "fid": 123.4, "density": 0.5, "num_fake": 10, "num_real": 20,
       "floor": {"fid": 12.5, "density": 1.01}}))
  return wd, grids


def test_page_inlines_every_grid_and_says_what_fired(fake_workdir, tmp_path):
  wd, grids = fake_workdir
  path = report.write_report(str(wd))
  page = open(path).read()
  for data in grids.values():
    assert base64.b64encode(data).decode() in page
  # The latest grid twice (large and in the strip), curves as PNGs, nothing linked.
  assert page.count(base64.b64encode(grids[300]).decode()) == 2
  assert not re.search(r'src="(?!data:)', page)
  assert "123.4" in page and "12.5" in page  # the metric and its floor
  assert "step 300: critic overfitting: overfit_rt = 0.8" in page and "mode collapse" in page
  assert "Alarms (2)" in page  # r_t 0.3 and 0.5 are below the 0.6 threshold
  # Side by side with a run that has nothing yet.
  (tmp_path / "empty").mkdir()
  page2 = report.render_page([report.load_run(str(wd)), report.load_run(str(tmp_path / "empty"))])
  assert "--runs:2" in page2 and "not available" in page2
  with pytest.raises(FileNotFoundError, match="does not exist"):
    report.write_report(str(wd), [str(tmp_path / "missing")])


def test_alarms_follow_the_loss_trait_not_its_name():
  # r_t = E[sign(D(real))] means overfitting only where D's zero is the
  # boundary: the same records alarm under hinge, not under Wasserstein.
  rows = [{"step": 300, "overfit_rt": 0.8}]
  monitor = {"overfit_threshold": 0.6}
  assert len(report.fired_alarms(rows, {"loss": "hinge", "monitor": monitor})) == 1
  assert report.fired_alarms(rows, {"loss": "wasserstein", "monitor": monitor}) == []
  assert [name for name, loss in losses.LOSSES.items() if not loss.zero_is_boundary] == [
      "wasserstein"]


def _chromium():
  for name in ("chromium", "chromium-browser", "google-chrome"):
    if shutil.which(name):
      return shutil.which(name)
  pytest.skip("headless Chromium not installed (apt-get install chromium); browser test skipped")


def test_chromium_renders_the_page_with_images_loaded(fake_workdir, tmp_path):
  browser = _chromium()
  wd, _ = fake_workdir
  page = open(report.write_report(str(wd))).read()
  # The page's title becomes "loaded N/M" once every image has decoded.
  probe = ("<script>window.onload=()=>{const i=[...document.images];"
           "document.title='loaded '+i.filter(x=>x.complete&&x.naturalWidth>0).length"
           "+'/'+i.length;};</script>")
  probed = tmp_path / "probe.html"
  probed.write_text(page.replace("</body>", probe + "</body>"))
  shot = tmp_path / "shot.png"
  flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--window-size=1200,1600"]
  dom = subprocess.run([browser, *flags, "--virtual-time-budget=5000", "--dump-dom",
                        probed.as_uri()], capture_output=True, text=True, timeout=120).stdout
  title = re.search(r"<title>(.*?)</title>", dom).group(1)
  n = len(re.findall(r"<img ", page))
  assert title == f"loaded {n}/{n}" and n >= 5
  subprocess.run([browser, *flags, f"--screenshot={shot}", probed.as_uri()],
                 capture_output=True, timeout=120, check=True)
  pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
  assert pixels.shape[0] > 500 and pixels.std() > 20  # not blank: text, grids, curves


def test_dataset_summary_from_prepared_metadata(tmp_path):
  meta = tmp_path / "tfds" / "gemstones" / "32" / "1.0.0" / "metadata.json"
  meta.parent.mkdir(parents=True)
  meta.write_text(json.dumps({"report": {"source": "/photos", "kept": {"train": 4398},
                                         "skipped": {"corrupt": 2}, "converted": {}}}))
  config = {"data": {"name": "gemstones", "image_size": 32, "data_dir": str(tmp_path / "tfds")}}
  assert report.dataset_summary(config)["skipped"] == {"corrupt": 2}
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "config.json").write_text(json.dumps(config))
  page = report.render_page([report.load_run(str(tmp_path / "run"))])
  assert "kept train 4398; skipped corrupt 2; converted none" in page
  assert "Samples over training</h3>\n<p class=missing>no samples/step_N.png yet" in page
