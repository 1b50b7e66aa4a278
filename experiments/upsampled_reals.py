"""What 64 px costs a generator that only knows 32 px: real photos down and up again.

  PYTHONPATH=. python experiments/upsampled_reals.py [--size=64] [--num=1000]

Takes `--num` of the real photos (seed 1) to half size (bicubic) and back
(bilinear), and prints their metrics against all the photos at `--size`
(the real features cached as `gemgan.evaluate`'s). A perfect half-size
generator, shown at full size, scores no better than this.
"""
import argparse
import json

import numpy as np
from PIL import Image

from configs import resnet
from gemgan import evaluation
from gemgan import input_pipeline


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--size", type=int, default=64)
  parser.add_argument("--num", type=int, default=1000)
  args = parser.parse_args()
  config = resnet.get_config("laptop")
  config.data.image_size = args.size
  info = input_pipeline.load_dataset(config)
  evaluator = evaluation.evaluator_for_config(config, info.images)
  picks = np.random.default_rng(1).choice(len(info.images), args.num, replace=False)
  half, full = (args.size // 2,) * 2, (args.size,) * 2
  blurred = np.stack([
      np.asarray(Image.fromarray(im).resize(half, Image.BICUBIC).resize(full, Image.BILINEAR))
      for im in info.images[picks]])
  metrics = evaluator(blurred)
  print(json.dumps({k: metrics[k] for k in ("fid", "kid_mean", "precision", "recall")}))


if __name__ == "__main__":
  main()
