"""Where one GAN iteration's time goes, per XLA op, from a jax.profiler trace.

Runs the iteration of iteration.py once to warm up, traces one more, and
sums the XLA:CPU thunk times (all threads) per HLO instruction and per kind
(YNNPACK fusion with the conv or dot inside, Eigen/naive `convolution`,
copy/transpose fusions, other fusions). Reads the trace with the xplane
proto that ships in tensorflow.

  python experiments/cpu_speed/profile_ops.py --model dcgan --impl fast [--top 25]
"""
import argparse
import collections
import glob
import re
import sys
import tempfile

import jax
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-direct-tensorflow-import

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import iteration  # pylint: disable=g-import-not-at-top,wrong-import-position


def describe(hlo_text: str) -> dict[str, str]:
  """HLO instruction name -> short description (kind, shape, conv window)."""
  comps, current = {}, None
  for line in hlo_text.splitlines():
    m = re.match(r"^%?(\S+) .*\{$", line)
    if m and not line.startswith(" "):
      current = comps.setdefault(m.group(1), [])
    elif current is not None and line.strip():
      current.append(line.strip())
  out = {}
  for body in comps.values():
    for line in body:
      m = re.match(r"(?:ROOT )?%(\S+) = (\S+) (\w[\w-]*)\(", line)
      if not m:
        continue
      name, shape, op = m.groups()
      desc = f"{op} {shape}"
      if op == "fusion":
        called = re.search(r"calls=%(\S+?),", line)
        kind = "ynn" if "__ynn_fusion" in line else re.search(r"kind=(\w+)", line).group(1)
        inner = " ".join(re.sub(r"^(ROOT )?%\S+ = ", "", l).split("(")[0]
                         for l in comps.get(called.group(1) if called else "", [])
                         if re.search(r" (convolution|dot)\(", l))
        desc = f"fusion[{kind}] {shape} {inner}"
      window = re.search(r"window=\{([^}]*)\}", line)
      labels = re.search(r"dim_labels=([^,\s]+)", line)
      if window and labels:
        desc += f" window={{{window.group(1)}}} {labels.group(1)}"
      out[name] = desc
  return out


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--model", default="dcgan", choices=["dcgan", "wgan_gp"])
  parser.add_argument("--impl", default="fast")
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--top", type=int, default=25)
  args = parser.parse_args()
  step, state, real = iteration.make_iteration(args.model, args.impl, args.batch)
  compiled = step.lower(state, real, jax.random.PRNGKey(0)).compile()
  info = describe(compiled.as_text())
  state, out = compiled(state, real, jax.random.PRNGKey(0))
  jax.block_until_ready(out)
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir):
      state, out = compiled(state, real, jax.random.PRNGKey(1))
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
    d = info[name]
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
  print(f"top {args.top} ops:")
  for name, ms in per_op.most_common(args.top):
    print(f"  {ms:8.1f} ms  {name}: {info[name][:150]}")


if __name__ == "__main__":
  main()
