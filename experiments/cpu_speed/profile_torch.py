"""Where the PyTorch reference's iteration spends its time, per aten op.

The counterpart of profile_ops.py for benchmarks/torch_reference.py's iteration
(the same networks and step): one warm-up iteration, then one under
torch.profiler, ops sorted by self CPU time.

  python -m experiments.cpu_speed.profile_torch --config dcgan [--n_critic 1] \
      [--bf16] [--memory_format channels_last] [--top 25]
"""
import argparse

import numpy as np
import torch

from experiments.cpu_speed import train_iter
from benchmarks import torch_reference


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--config", default="dcgan")
  parser.add_argument("--n_critic", type=int, default=0, help="0: the config's")
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--bf16", action="store_true")
  parser.add_argument("--memory_format", default="channels_last")
  parser.add_argument("--top", type=int, default=25)
  args = parser.parse_args()
  config = train_iter.load_config(args.config)
  config.batch_size = args.batch
  config.n_critic = args.n_critic or config.n_critic
  it = torch_reference.TorchIteration(config, bf16=args.bf16, memory_format=args.memory_format)
  size = config.data.image_size
  images = np.random.RandomState(0).uniform(-1, 1, (config.n_critic, args.batch, size, size, 3))
  reals = [it.prepare(x) for x in images]
  it.step(reals)
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
    it.step(reals)
  events = prof.key_averages()
  total = sum(e.self_cpu_time_total for e in events) / 1e3
  print(f"{args.config} n_critic {config.n_critic} bf16={args.bf16} {args.memory_format}: "
        f"{total:.0f} ms self CPU time in all ops")
  for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:args.top]:
    ms = e.self_cpu_time_total / 1e3
    print(f"  {ms:8.1f} ms {ms / total:5.1%}  x{e.count:<4d} {e.key}")


if __name__ == "__main__":
  main()
