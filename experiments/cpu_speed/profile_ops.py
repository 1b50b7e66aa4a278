"""Where one GAN iteration's time goes, per XLA op, from a jax.profiler trace.

Runs one iteration once to warm up, traces one more, and sums the XLA:CPU thunk times (all threads) per HLO instruction and per kind
(YNNPACK fusion with the conv or dot inside, Eigen/naive `convolution`,
copy/transpose fusions, other fusions). Reads the trace with the xplane
proto that ships in tensorflow.

The iteration is iteration.py's plain one (--model), or with --config the
project's own jitted train step (critic updates inside lax.scan), built by
gemgan.benchmark:

  python -m experiments.cpu_speed.profile_ops --model dcgan --impl fast [--top 25]
  python -m experiments.cpu_speed.profile_ops --config wgan_gp --n_critic 1 --impl fast
  python -m experiments.cpu_speed.profile_ops --config resnet:laptop --impl auto
"""
import argparse
import collections
import glob
import re
import tempfile

import jax
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-direct-tensorflow-import

from experiments.cpu_speed import iteration
from experiments.cpu_speed import train_iter
from gemgan import benchmark


def _shape(text: str) -> list[int]:
  return [int(d) for d in re.match(r"\w+\[([\d,]*)\]", text).group(1).split(",") if d]


def _window(win: str, key: str, default: int) -> list[int]:
  m = re.search(key + r"=(\S+)", win)
  return [int(v) for v in m.group(1).split("x")] if m else [default, default]


def _conv_info(line: str, shapes: dict[str, str]) -> tuple[str, float]:
  """(' window=... labels kernel=[...]', FLOPs) of an HLO convolution line
  in NHWC x HWIO form. FLOPs count the multiply-adds that touch input
  elements (not padding or the zeros of input dilation), as XLA's cost
  analysis does."""
  window = re.search(r"window=\{([^}]*)\}", line)
  labels = re.search(r"dim_labels=([^,\s]+)", line)
  operands = re.search(r"convolution\(%(\S+), %(\S+)\)", line)
  if not (window and labels and operands):
    return "", 0.0
  x = _shape(shapes.get(operands.group(1), "f32[]"))
  kernel = _shape(shapes.get(operands.group(2), "f32[]"))
  out = _shape(line.split(" = ", 1)[1].split(" ", 1)[0])
  desc = f" window={{{window.group(1)}}} {labels.group(1)} kernel={kernel}"
  if labels.group(1) != "b01f_01io->b01f" or len(kernel) != 4 or len(x) != 4:
    return desc, 0.0
  win = window.group(1)
  pads = [int(p.split("_")[0]) for p in re.search(r"pad=(\S+)", win).group(1).split("x")] \
      if "pad=" in win else [0, 0]
  flops = 2.0 * x[0] * x[3] * kernel[3]
  for n, m, k, s, lo, ld, rd in zip(x[1:3], out[1:3], kernel[:2], _window(win, "stride", 1), pads,
                                    _window(win, "lhs_dilate", 1), _window(win, "rhs_dilate", 1)):
    flops *= sum(1 for i in range(m) for t in range(k)
                 if 0 <= i * s - lo + t * rd <= (n - 1) * ld and (i * s - lo + t * rd) % ld == 0)
  return desc, flops


def describe(hlo_text: str) -> dict[str, tuple[str, float]]:
  """HLO instruction name -> (short description: kind, shape, conv window
  and kernel; conv FLOPs or 0)."""
  comps, current = {}, None
  for line in hlo_text.splitlines():
    m = re.match(r"^%?(\S+) .*\{$", line)
    if m and not line.startswith(" "):
      current = comps.setdefault(m.group(1), [])
    elif current is not None and line.strip():
      current.append(line.strip())
  shapes = {}
  for body in comps.values():
    for line in body:
      m = re.match(r"(?:ROOT )?%(\S+) = (\S+) ", line)
      if m:
        shapes[m.group(1)] = m.group(2)
  out = {}
  for body in comps.values():
    for line in body:
      m = re.match(r"(?:ROOT )?%(\S+) = (\S+) (\w[\w-]*)\(", line)
      if not m:
        continue
      name, shape, op = m.groups()
      desc, flops = f"{op} {shape}", 0.0
      if op == "fusion":
        called = re.search(r"calls=%(\S+?),", line)
        kind = "ynn" if "__ynn_fusion" in line else re.search(r"kind=(\w+)", line).group(1)
        inner = [l for l in comps.get(called.group(1) if called else "", [])
                 if re.search(r" (convolution|dot)\(", l)]
        desc = f"fusion[{kind}] {shape} " + " ".join(
            re.sub(r"^(ROOT )?%\S+ = ", "", l).split("(")[0] for l in inner)
        for l in inner:
          extra, f = _conv_info(l, shapes)
          desc, flops = desc + extra, flops + f
      elif op == "convolution":
        extra, flops = _conv_info(line, shapes)
        desc += extra
      out[name] = (desc, flops)
  return out


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--model", default="dcgan", choices=["dcgan", "wgan_gp"])
  parser.add_argument("--impl", default="fast")
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--top", type=int, default=25)
  parser.add_argument("--config", default="", help="profile configs/<name>.py[:preset]'s train step")
  parser.add_argument("--n_critic", type=int, default=0, help="with --config; 0: the config's")
  parser.add_argument("--image_size", type=int, default=0, help="with --config; 0: the config's")
  args = parser.parse_args()
  if args.config:
    config = train_iter.load_config(*args.config.split(":", 1))
    config.model.conv_impl, config.batch_size = args.impl, args.batch
    config.n_critic = args.n_critic or config.n_critic
    config.data.image_size = args.image_size or config.data.image_size
    compiled, state, batch, *_ = benchmark.compile_train_step(config, 256)
    call = lambda state, i: compiled(state, batch(i))
    args.model = (f"{args.config} train step ({config.data.image_size} px, "
                  f"n_critic {config.n_critic})")
  else:
    step, state, real = iteration.make_iteration(args.model, args.impl, args.batch)
    compiled = step.lower(state, real, jax.random.PRNGKey(0)).compile()
    call = lambda state, i: compiled(state, real, jax.random.PRNGKey(i))
  info = describe(compiled.as_text())
  state, out = call(state, 0)
  jax.block_until_ready(out)
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir):
      state, out = call(state, 1)
      jax.block_until_ready(out)
    space = xplane_pb2.XSpace()
    with open(glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)[0], "rb") as f:
      space.ParseFromString(f.read())
  per_op, wall = collections.Counter(), 0.0
  for plane in space.planes:
    names = {k: v.name for k, v in plane.event_metadata.items()}
    for line in plane.lines:
      for ev in line.events:
        name = names.get(ev.metadata_id, "?")
        if name in info:
          per_op[name] += ev.duration_ps / 1e9
        elif "wait for completion" in name:
          wall = max(wall, ev.duration_ps / 1e9)
  kinds = collections.Counter()
  for name, ms in per_op.items():
    d = info[name][0]
    if d.startswith("fusion[ynn]"):
      kind = "ynn " + ("conv" if "convolution" in d else "dot" if "dot" in d else "other")
    elif d.startswith("convolution"):
      kind = "conv (Eigen" + (", lhs-dilated)" if "lhs_dilate" in d else ")")
    elif "copy" in name or "transpose" in name:
      kind = "copy/transpose"
    else:
      kind = "other " + d.split(" ")[0].split("[")[0] + ("[" + d.split("[")[1].split("]")[0] + "]"
                                                         if d.startswith("fusion") else "")
    kinds[kind] += ms
  total = sum(per_op.values())
  print(f"{args.model} {args.impl}: iteration {wall:.0f} ms wall, {total:.0f} ms summed over "
        f"threads")
  for kind, ms in kinds.most_common():
    print(f"  {ms:8.1f} ms {ms / total:5.1%}  {kind}")
  conv_ms = sum(ms for name, ms in per_op.items() if info[name][1])
  conv_flops = sum(info[name][1] for name in per_op)
  print(f"convolutions: {conv_flops / 1e9:.1f} GFLOP in {conv_ms:.0f} ms summed: "
        f"{conv_flops / conv_ms / 1e6:.1f} GFLOP/s per thread-second")
  print(f"top {args.top} ops (GFLOP/s per thread-second for convs):")
  for name, ms in per_op.most_common(args.top):
    desc, flops = info[name]
    rate = f"{flops / ms / 1e6:6.1f}" if flops else " " * 6
    print(f"  {ms:8.1f} ms {rate}  {name}: {desc[:200]}")


if __name__ == "__main__":
  main()
