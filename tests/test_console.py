"""The console: the tick line's numbers by hand, its timing, the log filter."""
import logging as pylogging
import os

import pytest

from configs import r3gan as r3gan_config
from configs import resnet as resnet_config
from configs import wgan_gp as wgan_config
from gemgan import cli
from gemgan import console


class FakeClock:
  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


def ticker(module, preset="", **changes):
  c = module.get_config(preset)
  for key, value in changes.items():
    setattr(c, key, value)
  clock = FakeClock()
  return console.Ticker(c, clock=clock), clock


def test_rates_count_real_images_shown_to_the_critic_and_eta_the_mean_rate():
  # batch 32 x n_critic 5 = 160 real images an iteration; 1000 iterations = 160 kimg.
  t, clock = ticker(wgan_config, batch_size=32, n_critic=5, num_train_steps=1000)
  assert t.total_kimg == 160.0
  t.started(1)  # after the first (compiled) iteration
  clock.now += 20.0
  tick = t.tick(101)  # 100 iterations in 20 s: 16,000 images
  assert tick["kimg"] == pytest.approx(101 * 160 / 1000)
  assert tick["img_per_sec"] == pytest.approx(800.0)
  assert tick["sec_per_kimg"] == pytest.approx(1.25)
  assert tick["eta_secs"] == pytest.approx((160.0 - 16.16) * 1000 / 800.0)
  clock.now += 80.0
  tick = t.tick(201)  # 100 more in 80 s: 200 img/s now, 320 img/s since the start
  assert tick["img_per_sec"] == pytest.approx(200.0)
  assert tick["eta_secs"] == pytest.approx((160.0 - 32.16) * 1000 / 320.0)
  line = t.line(tick, {"d_loss": -1.23456, "g_loss": 0.5, "gradient_penalty": 0.01234,
                       "wasserstein": 2.5, "overfit_rt": 0.9})
  assert line == ("kimg 32.2/160 (20.1%) | 200 img/s, 5 s/kimg, ETA 6m40s | "
                  "d -1.23 g 0.5 gp 0.0123 w 2.5")


def test_zero_weight_terms_are_left_out_and_ada_shows_p():
  # The ResNet (hinge, no penalty): r_t, no gp; R3GAN: R1 and R2 and ADA's p.
  t, _ = ticker(resnet_config)
  assert [term.label for term in t.terms] == ["d", "g", "r_t"]
  t, _ = ticker(r3gan_config)
  assert [term.label for term in t.terms] == ["d", "g", "r1", "r2", "r_t", "p"]
  line = t.line({"kimg": 0.0}, {"d_loss": 1.0, "g_loss": 2.0, "r1_penalty": 3e-5,
                                "r2_penalty": 4.0, "overfit_rt": 0.123, "augment_p": 0.0456})
  assert line.endswith("| d 1 g 2 r1 3e-05 r2 4 r_t 0.12 p 0.046")
  assert "img/s" not in line  # no finished step to rate yet


def test_the_first_line_comes_soon_then_every_log_every_secs():
  t, clock = ticker(resnet_config, log_every_secs=60.0)
  assert not t.due()  # not before the first iteration has finished
  t.started(1)
  clock.now += console.FIRST_TICK_SECS - 0.5
  assert not t.due()
  clock.now += 1.0
  assert t.due()
  t.tick(5)
  clock.now += 59.0
  assert not t.due()
  clock.now += 1.0
  assert t.due()
  t, clock = ticker(resnet_config, log_every_secs=0.0)  # by steps only
  t.started(1)
  clock.now += 1e6
  assert not t.due()


@pytest.mark.parametrize("seconds,text", [(0.4, "0s"), (59.6, "1m00s"), (307, "5m07s"),
                                          (7500, "2h05m"), (3 * 86400 + 4 * 3600, "3d04h")])
def test_format_duration(seconds, text):
  assert console.format_duration(seconds) == text


def _record(pathname, level, message="m"):
  return pylogging.LogRecord("absl", level, pathname, 1, message, None, None)


def test_the_log_filter_keeps_gemgan_and_other_libraries_warnings_but_chatter():
  keep = cli.LibraryChatter().filter
  own = os.path.join(os.path.dirname(cli.__file__), "train.py")
  assert keep(_record(own, pylogging.INFO))
  assert not keep(_record("/venv/site-packages/orbax/checkpoint/manager.py", pylogging.INFO))
  assert keep(_record("/venv/site-packages/orbax/checkpoint/manager.py", pylogging.WARNING))
  assert not keep(_record("/venv/site-packages/jax/_src/xla_bridge.py", pylogging.WARNING,
                          "An NVIDIA GPU may be present on this machine"))
  assert not keep(_record("/venv/site-packages/tensorflow_datasets/core/dataset_builder.py",
                          pylogging.WARNING, "Using custom data configuration: x"))
  assert keep(_record("/venv/site-packages/tensorflow_datasets/core/dataset_builder.py",
                      pylogging.WARNING, "Not enough disk space"))
  assert cli.verbose_requested(["prog", "--verbose"])
  assert not cli.verbose_requested(["prog", "--noverbose"])
