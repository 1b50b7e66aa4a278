r"""Trains the gem classifier that scores conditional samples (gemgan.metrics.gem_classifier).

  python -m gemgan.train_classifier --image_size=32

Trains on four fifths of every class of the real photos, reports top-1/top-5
on the held-out fifth (the yardstick for conditional samples: chance is
1/88), and caches the weights where `gemgan.evaluate` finds them. Prints
one JSON line.
"""
import json
import time

from absl import app
from absl import flags
from absl import logging

from gemgan import config_lib
from gemgan import input_pipeline
from gemgan.metrics import gem_classifier
from gemgan.metrics import real_stats

FLAGS = flags.FLAGS
flags.DEFINE_integer("image_size", 32, "Resolution of the conditional runs to score.")
flags.DEFINE_string("manual_dir", "../shared/data/gemstones", "The real photos.")
flags.DEFINE_string("data_dir", "", "TFDS data_dir; '' = ~/tensorflow_datasets.")
flags.DEFINE_integer("epochs", 30, "Passes over the training four fifths.")
flags.DEFINE_integer("seed", 0, "Split and initialisation seed.")
flags.DEFINE_string("output", "", "Weights file; default " + gem_classifier.default_path(32)
                    .replace("32px", "<size>px"))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  config = config_lib.base_config()
  config.data.update(image_size=FLAGS.image_size, manual_dir=FLAGS.manual_dir,
                     data_dir=FLAGS.data_dir)
  info = input_pipeline.load_dataset(config)
  train_idx, held_idx = gem_classifier.held_out_split(info.labels, seed=FLAGS.seed)
  t0 = time.time()
  clf = gem_classifier.train(info.images[train_idx], info.labels[train_idx], info.num_classes,
                             epochs=FLAGS.epochs, seed=FLAGS.seed)
  held = clf.accuracy(info.images[held_idx], info.labels[held_idx])
  clf.meta = {"held_out_top1": held["top1"], "held_out_top5": held["top5"],
              "num_train": int(len(train_idx)), "num_held_out": int(len(held_idx)),
              "chance": 1 / info.num_classes, "epochs": FLAGS.epochs, "seed": FLAGS.seed,
              "images_id": real_stats.fingerprint(info.images), "dataset": info.name,
              "class_names": list(info.class_names), "train_seconds": time.time() - t0}
  path = FLAGS.output or gem_classifier.default_path(FLAGS.image_size)
  gem_classifier.save(path, clf)
  logging.info("Held-out real photos: top-1 %.3f, top-5 %.3f (chance %.4f); saved %s",
               held["top1"], held["top5"], 1 / info.num_classes, path)
  print(json.dumps({"path": path, **{k: v for k, v in clf.meta.items() if k != "class_names"}}))


if __name__ == "__main__":
  app.run(main)
