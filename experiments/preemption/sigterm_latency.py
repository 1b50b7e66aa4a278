"""Seconds from SIGTERM to exit for a real training run, as a preemption would send it.

  python experiments/preemption/sigterm_latency.py --config=configs/wgan_gp.py
  python experiments/preemption/sigterm_latency.py --config=configs/dcgan.py

Starts `gemgan.main` on a fresh workdir, waits until training has begun plus
`--after` seconds, sends SIGTERM and prints the seconds until the process
exited, its exit code and the step it saved (from its own log line). Cloud
preemption (GCE) and SLURM give about 30 s.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _wait_for(log_path: str, pattern: str, proc: subprocess.Popen, timeout: float) -> None:
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if proc.poll() is not None:
      raise SystemExit(f"training exited early ({proc.returncode}); see {log_path}")
    with open(log_path) as f:
      if re.search(pattern, f.read()):
        return
    time.sleep(0.5)
  raise SystemExit(f"no {pattern!r} in {log_path} after {timeout:.0f} s")


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", required=True)
  p.add_argument("--after", type=float, default=20.0,
                 help="seconds of training before the signal")
  p.add_argument("--workdir", default="")
  p.add_argument("overrides", nargs="*", help="extra --config.x=y flags")
  args = p.parse_args()
  workdir = args.workdir or tempfile.mkdtemp(prefix="sigterm_")
  shutil.rmtree(workdir, ignore_errors=True)
  os.makedirs(workdir)
  log_path = os.path.join(workdir, "train.log")
  cmd = [sys.executable, "-m", "gemgan.main", f"--config={args.config}",
         f"--workdir={workdir}", *args.overrides]
  with open(log_path, "w") as log:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    _wait_for(log_path, r"Training \S+ from step", proc, timeout=1800)
    # The first iteration compiles; count from the first logged progress instead
    # when it comes within the wait, so the signal lands mid-training.
    time.sleep(args.after)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait()
    seconds = time.monotonic() - sent
  text = open(log_path).read()
  saved = re.findall(r"Signal 15: saved step (\d+)", text)
  print(f"{args.config}: exit {rc} {seconds:.1f} s after SIGTERM, "
        f"saved step {saved[-1] if saved else 'none'}; log {log_path}")
  print("last line:", text.strip().splitlines()[-1])


if __name__ == "__main__":
  main()
