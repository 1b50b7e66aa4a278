"""Recipe comparison on the real gems at equal compute; regenerates the table.

  python experiments/compare.py --image_size=32 --width=32 --kimg=60 \
      --out=experiments/results/cpu32

Each recipe trains (`gemgan.main`) until the critic has seen `--kimg`
thousand real images (the StyleGAN papers' unit of training length), then is
evaluated (`gemgan.evaluate`: FID/KID with the standard Inception weights when
converted, and SWD) and sampled (`gemgan.sample`, a 8x8 grid with a fixed
seed). Writes `<out>/table.md`, `<out>/results.json` and `<out>/<recipe>.png`.
Workdirs go to `experiments/runs/` (ignored by git); rerunning resumes them.
"""
import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The config files import gemgan: run as `python experiments/compare.py`, the
# repository root is not on the path by itself.
sys.path.insert(0, ROOT)
REAL_GEMS = os.path.join(os.path.dirname(ROOT), "shared", "data", "gemstones")

# name -> (config file and preset, overrides, description). Lengths are in
# kimg (config.num_train_kimg): each config turns them into its own steps.
RECIPES = {
    "seed_dcgan": ("configs/dcgan.py:seed", {}, "notebook DCGAN"),
    "hinge_sn": ("configs/hinge_sn.py", {}, "hinge + SN + EMA + DiffAugment"),
    "hinge_sn_cond": ("configs/hinge_sn.py:conditional", {},
                      "hinge + SN + EMA + DiffAugment, class-conditional"),
    "wgan_gp": ("configs/wgan_gp.py", {}, "our WGAN-GP default (no norm in critic)"),
    "seed_wgan_gp": ("configs/wgan_gp.py:seed", {},
                     "notebook WGAN-GP (BN+dropout critic, 2 G steps)"),
    "wgan_gp_ema_diffaug": ("configs/wgan_gp.py:ema_diffaug", {},
                            "WGAN-GP + EMA + DiffAugment"),
    "resnet": ("configs/resnet.py", {}, "ResNet + hinge + SN + EMA + DiffAugment"),
    "resnet_ada": ("configs/resnet.py:ada", {}, "ResNet + hinge + SN + EMA + ADA"),
    "resnet_cond": ("configs/resnet.py:conditional", {},
                    "ResNet + hinge + SN + EMA + DiffAugment, class-conditional"),
    "r3gan": ("configs/r3gan.py", {}, "R3GAN: RpGAN + R1 + R2, normalisation-free ResNet"),
}


def _child_cpu_seconds() -> float:
  """User + system CPU time of finished children: compute spent, whatever the load."""
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def _images_per_step(config_spec: str) -> int:
  """Real images one iteration of `configs/<file>.py:<preset>` shows the critic."""
  path, _, preset = config_spec.partition(":")
  spec = importlib.util.spec_from_file_location("recipe_config", os.path.join(ROOT, path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config(preset) if preset else module.get_config()
  return c.batch_size * c.n_critic


def _run(cmd, log_path):
  print("$", " ".join(cmd), flush=True)
  with open(log_path, "a") as log:
    proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
  if proc.returncode:
    raise RuntimeError(f"{cmd[2]} failed ({proc.returncode}); see {log_path}")


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--recipes", default=",".join(RECIPES))
  p.add_argument("--image_size", type=int, default=32)
  p.add_argument("--width", type=int, default=32)
  p.add_argument("--kimg", type=float, default=60.0, help="real images shown to the critic")
  p.add_argument("--num_samples", type=int, default=2000)
  p.add_argument("--manual_dir", default=REAL_GEMS)
  p.add_argument("--data_dir", default=os.path.join(ROOT, "experiments", "runs", "tfds"))
  p.add_argument("--out", default=os.path.join(ROOT, "experiments", "results", "cpu32"))
  p.add_argument("--conv_impl", default="auto")
  p.add_argument("--hardware", default="", help="recorded in the table")
  p.add_argument("--checkpoint_every_kimg", type=float, default=0.0,
                 help="keep a checkpoint every this many kimg, all of them (for "
                 "fid_curve.py); 0: every 1,000 steps, the last 3 kept")
  args = p.parse_args()
  os.makedirs(args.out, exist_ok=True)
  results_path = os.path.join(args.out, "results.json")
  results = json.load(open(results_path)) if os.path.exists(results_path) else {}

  for name in args.recipes.split(","):
    config, overrides, what = RECIPES[name]
    workdir = os.path.join(ROOT, "experiments", "runs", f"{os.path.basename(args.out)}_{name}")
    os.makedirs(workdir, exist_ok=True)
    log = os.path.join(workdir, "compare.log")
    flags = {"data.manual_dir": args.manual_dir, "data.data_dir": args.data_dir,
             "data.image_size": args.image_size, "model.width": args.width,
             "num_train_kimg": args.kimg, "log_every_steps": 50,
             "sample_every_steps": 1000, "checkpoint_every_steps": 1000,
             "model.conv_impl": args.conv_impl, **overrides}
    if args.checkpoint_every_kimg:
      flags["checkpoint_every_steps"] = max(
          1, round(args.checkpoint_every_kimg * 1000 / _images_per_step(config)))
      flags.update({"max_to_keep": 1000, "checkpoint_every_minutes": 0.0})
    t0, cpu0 = time.time(), _child_cpu_seconds()
    _run([sys.executable, "-m", "gemgan.main", f"--config={config}", f"--workdir={workdir}"]
         + [f"--config.{k}={v}" for k, v in flags.items()], log)
    train_s, cpu_s = time.time() - t0, _child_cpu_seconds() - cpu0
    with open(os.path.join(workdir, "config.json")) as f:
      saved = json.load(f)
    steps, batch, n_critic = saved["num_train_steps"], saved["batch_size"], saved["n_critic"]
    grid = os.path.join(args.out, f"{name}.png")
    _run([sys.executable, "-m", "gemgan.sample", f"--workdir={workdir}", "--num=64",
          "--seed=0", f"--out={grid}"], log)
    out = subprocess.run([sys.executable, "-m", "gemgan.evaluate", f"--workdir={workdir}",
                          f"--num_samples={args.num_samples}"], cwd=ROOT, capture_output=True,
                         text=True)
    with open(log, "a") as f:
      f.write(out.stderr)
    if out.returncode:
      raise RuntimeError(f"evaluate failed for {name}; see {log}")
    metrics = json.loads(out.stdout.strip().splitlines()[-1])
    results[name] = {"what": what, "config": config, "steps": steps, "batch": batch,
                     "n_critic": n_critic, "train_seconds": train_s, "cpu_seconds": cpu_s,
                     "kimg": args.kimg, "metrics": metrics}
    with open(results_path, "w") as f:
      json.dump(results, f, indent=1)
    write_table(results, args)


def write_table(results, args):
  """Markdown table, best FID (else SWD) first."""
  def key(item):
    m = item[1]["metrics"]
    return m.get("fid", m.get("swd_mean", float("inf")))

  lines = [f"# Recipes on the real gems, {args.image_size} px, width {args.width} "
           "(kimg: real images shown to the critic, per row)",
           "", f"Hardware: {args.hardware or 'see notes'}. Regenerate: "
           f"`python experiments/compare.py --image_size={args.image_size} "
           f"--width={args.width} --kimg={args.kimg:g} --num_samples={args.num_samples}`.", "",
           "| recipe | what | kimg | G steps | batch x n_critic | train min | FID | KID x1e3 | "
           "SWD x1e3 (mean) | precision | recall | samples |",
           "| --- " * 12 + "|"]
  for name, r in sorted(results.items(), key=key):
    m = r["metrics"]
    fmt = lambda k, s=1.0: f"{m[k] * s:.2f}" if isinstance(m.get(k), (int, float)) else "-"
    lines.append(
        f"| {name} | {r['what']} | {r['kimg']:g} | {r['steps']} | {r['batch']}x{r['n_critic']} | "
        f"{r['train_seconds'] / 60:.1f} | {fmt('fid')} | {fmt('kid_mean', 1e3)} | "
        f"{fmt('swd_mean')} | {fmt('precision')} | {fmt('recall')} | "
        f"![{name}]({name}.png) |")
  floor = next(iter(results.values()))["metrics"].get("floor", {})
  if floor:
    lines += ["", "Real-vs-real floor (two halves of the real set): "
              + ", ".join(f"{k} {v:.3g}" for k, v in floor.items() if isinstance(v, float))]
  with open(os.path.join(args.out, "table.md"), "w") as f:
    f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
  main()
