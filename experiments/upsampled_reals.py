"""What 64 px costs a generator that only knows 32 px: real photos down and up again.

  PYTHONPATH=. python experiments/upsampled_reals.py [--size=64] [--num=1000]
  PYTHONPATH=. python experiments/upsampled_reals.py --workdir=RUN  # a 32 px run's samples

Takes `--num` of the real photos (seed 1) to half size (bicubic) and back
(bilinear), and prints their metrics against all the photos at `--size`
(the real features cached as `gemgan.evaluate`'s). A perfect half-size
generator, shown at full size, scores no better than this. With
`--workdir`, the samples (seed 0, as `gemgan.evaluate`'s) of a run trained
at half size, upsampled the same way: what it scores shown at full size.
"""
import argparse
import json

import numpy as np
from PIL import Image

from configs import resnet
from gemgan import evaluation
from gemgan import input_pipeline
from gemgan import sampling


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--size", type=int, default=64)
  parser.add_argument("--num", type=int, default=1000)
  parser.add_argument("--workdir", default="", help="a half-size run: upsample its samples")
  args = parser.parse_args()
  half, full = (args.size // 2,) * 2, (args.size,) * 2
  sampler = sampling.load_generator(args.workdir) if args.workdir else None
  if sampler and sampler.image_shape[:2] != half:  # checked before minutes of real features
    parser.error(f"--workdir's run makes {sampler.image_shape[0]} px images; "
                 f"--size={args.size} needs a {half[0]} px run")
  config = resnet.get_config("laptop")
  config.data.image_size = args.size
  info = input_pipeline.load_dataset(config)
  evaluator = evaluation.evaluator_for_config(config, info.images)
  if sampler:
    small = [Image.fromarray(im) for im in sampler.render(sampler.latents(0, range(args.num)))]
  else:
    picks = np.random.default_rng(1).choice(len(info.images), args.num, replace=False)
    small = [Image.fromarray(im).resize(half, Image.BICUBIC) for im in info.images[picks]]
  blurred = np.stack([np.asarray(im.resize(full, Image.BILINEAR)) for im in small])
  metrics = evaluator(blurred)
  print(json.dumps({k: metrics[k] for k in ("fid", "kid_mean", "precision", "recall")}))


if __name__ == "__main__":
  main()
