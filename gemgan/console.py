"""What training prints: one StyleGAN-style tick line per log step.

  kimg 12.8/128 (10.0%) | 295 img/s, 3.4 s/kimg, ETA 6m30s | d 1.38 g 0.498 r_t 0.15

kimg counts real images shown to the critic, batch_size * n_critic per
iteration, the unit of config_lib's num_train_kimg (StyleGAN2-ADA's `kimg`).
img/s is that count over the wall time since the previous line (samples,
evaluations and saves included, as StyleGAN2-ADA's sec/kimg); the ETA is the
remaining kimg at the mean rate since the first iteration finished, so
compilation does not count. Losses get three significant digits; a term
whose weight is zero is left out.
"""
import contextlib
import io
import time
from typing import NamedTuple

import ml_collections

from gemgan import losses

# The first line comes this soon after the first iteration (or log_every_secs
# if shorter): a slow run shows its rate and ETA within seconds, not steps.
FIRST_TICK_SECS = 10.0

# Set by gemgan.cli for the command-line tools unless --verbose.
hush_libraries = False


@contextlib.contextmanager
def libraries_hushed():
  """Drops what other libraries print to stdout inside, when `hush_libraries`:
  TFDS prints "Downloading and preparing dataset Unknown size" even for a
  local builder that downloads nothing (gemgan logs its own dataset line)."""
  if not hush_libraries:
    yield
    return
  with contextlib.redirect_stdout(io.StringIO()):
    yield


def format_duration(seconds: float) -> str:
  """40s, 5m07s, 2h05m, 3d04h."""
  s = int(round(seconds))
  if s < 60:
    return f"{s}s"
  m, s = divmod(s, 60)
  if m < 60:
    return f"{m}m{s:02d}s"
  h, m = divmod(m, 60)
  if h < 24:
    return f"{h}h{m:02d}m"
  d, h = divmod(h, 24)
  return f"{d}d{h:02d}h"


def format_count(n: int) -> str:
  """Parameter counts: 812, 35.2k, 1.06M."""
  if n < 1000:
    return str(n)
  return f"{n / 1e3:.3g}k" if n < 1e6 else f"{n / 1e6:.3g}M"


class Term(NamedTuple):
  label: str  # as printed
  key: str  # in the step's metrics
  digits: str  # format spec


def loss_terms(config: ml_collections.ConfigDict) -> list[Term]:
  """The metrics the tick line shows for `config`: the losses, the penalties
  with a non-zero weight, r_t where the loss makes it mean something (else the
  Wasserstein estimate), ADA's p where ADA is on."""
  terms = [Term("d", "d_loss", ".3g"), Term("g", "g_loss", ".3g")]
  for label, key, weight in (("gp", "gradient_penalty", config.gp_weight),
                             ("r1", "r1_penalty", config.r1_weight),
                             ("r2", "r2_penalty", config.r2_weight)):
    if weight:
      terms.append(Term(label, key, ".3g"))
  if losses.LOSSES[config.loss].zero_is_boundary:
    terms.append(Term("r_t", "overfit_rt", ".2f"))
  else:
    terms.append(Term("w", "wasserstein", ".3g"))
  if config.augment.ada_ops:
    terms.append(Term("p", "augment_p", ".3f"))
  return terms


class Ticker:
  """Keeps the clock of the tick lines: when one is due by time, the rates, the line."""

  def __init__(self, config: ml_collections.ConfigDict, clock=time.monotonic):
    self.images_per_step = config.batch_size * config.n_critic
    self.total_kimg = config.num_train_steps * self.images_per_step / 1000
    self.every_secs = float(config.log_every_secs)
    self.terms = loss_terms(config)
    self.clock = clock
    self.start = self.last = None  # (time, step): first iteration finished / last line

  def started(self, step: int) -> None:
    """The first iteration (with its compilation) has finished at `step`."""
    self.start = self.last = (self.clock(), step)

  def due(self) -> bool:
    """Whether a line is due by time (log_every_secs; 0: by steps only)."""
    if not self.every_secs or self.last is None:
      return False
    wait = self.every_secs if self.last is not self.start else min(FIRST_TICK_SECS,
                                                                     self.every_secs)
    return self.clock() - self.last[0] >= wait

  def tick(self, step: int) -> dict:
    """kimg, and img/s, s/kimg and ETA seconds where a step has finished since the
    last line; restarts the interval."""
    now, out = self.clock(), {"kimg": step * self.images_per_step / 1000}
    if self.last is not None and step > self.last[1] and now > self.last[0]:
      out["img_per_sec"] = (step - self.last[1]) * self.images_per_step / (now - self.last[0])
      out["sec_per_kimg"] = 1000 / out["img_per_sec"]
      mean_rate = (step - self.start[1]) * self.images_per_step / (now - self.start[0])
      out["eta_secs"] = (self.total_kimg - out["kimg"]) * 1000 / mean_rate
    if self.last is not None:
      self.last = (now, step)
    return out

  def line(self, tick: dict, means: dict) -> str:
    """The console line of `tick` (from `tick`) and the step's mean metrics."""
    parts = [f"kimg {tick['kimg']:.1f}/{self.total_kimg:g} "
             f"({100 * tick['kimg'] / self.total_kimg:.1f}%)"]
    if "img_per_sec" in tick:
      parts.append(f"{tick['img_per_sec']:.3g} img/s, {tick['sec_per_kimg']:.3g} s/kimg, "
                   f"ETA {format_duration(tick['eta_secs'])}")
    parts.append(" ".join(f"{t.label} {format(float(means[t.key]), t.digits)}"
                          for t in self.terms if t.key in means))
    return " | ".join(parts)
