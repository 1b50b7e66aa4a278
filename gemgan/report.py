r"""One self-contained HTML page per run: the evidence of a run in one place.

  python -m gemgan.report --workdir=DIR [--compare=DIR2 --compare=DIR3] [--out=FILE]

The page (default `DIR/report.html`) holds the config, the dataset summary
(kept / skipped by reason, when the prepared dataset's metadata is found),
loss, monitor and eval curves, every sample grid over training and the
latest one large, the metrics table of `eval/*.json` against the
real-vs-real floor, the alarms that fired, and a latent walk if one is in
the workdir. Images are inlined as base64, so the file can be mailed or
attached. With `--compare` the runs stand side by side, one column each.

Files are read tolerantly (a run still training has a half-written last
JSONL line, no eval yet, or a grid being renamed): what is missing is
said on the page, never an error.
"""
import base64
import glob
import html
import json
import os
import re
import tempfile
from typing import Optional, Sequence

from gemgan import losses
from gemgan import monitors
from gemgan import visualize

CURVE_GROUPS = (("losses", ("d_loss", "g_loss", "wasserstein", "gradient_penalty",
                            "r1_penalty")),
                ("monitors", ("overfit_rt", "sample_diversity", "d_grad_norm", "g_grad_norm")))
TABLE_SKIP = ("num_real", "num_fake", "kid_subset_size")


def _read_json(path: str) -> Optional[dict]:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _step_of(path: str) -> int:
  m = re.search(r"step_(\d+)", os.path.basename(path))
  return int(m.group(1)) if m else -1


def dataset_summary(config: dict) -> Optional[dict]:
  """The prepared dataset's "kept / skipped / converted" report, if it can be found."""
  data = config.get("data", {})
  root = os.path.expanduser(data.get("data_dir") or "~/tensorflow_datasets")
  pattern = os.path.join(root, data.get("name", "?"), str(data.get("image_size", "*")) + "*",
                         "**", "metadata.json")
  for path in sorted(glob.glob(pattern, recursive=True)):
    meta = _read_json(path)
    if meta and "report" in meta:
      return meta["report"]
  return None


def load_run(workdir: str) -> dict:
  """Everything the page shows, read from a workdir (missing pieces are None or empty)."""
  config = _read_json(os.path.join(workdir, "config.json")) or {}
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  records = visualize.read_jsonl(metrics_path) if os.path.isfile(metrics_path) else []
  grids = sorted(glob.glob(os.path.join(workdir, "samples", "step_*.png")), key=_step_of)
  evals = sorted(glob.glob(os.path.join(workdir, "eval", "step_*.json")), key=_step_of)
  walks = sorted(glob.glob(os.path.join(workdir, "*.gif"))
                 + glob.glob(os.path.join(workdir, "samples", "*.gif")))
  return {"workdir": os.path.abspath(workdir), "config": config, "records": records,
          "grids": [g for g in grids if not g.endswith(".tmp.png")],
          "eval": _read_json(evals[-1]) if evals else None,
          "eval_path": evals[-1] if evals else None,
          "walk": walks[-1] if walks else None, "dataset": dataset_summary(config)}


def fired_alarms(records: Sequence[dict], config: dict) -> list[str]:
  """The alarms training raised, recomputed from the recorded signals.

  train.py logs alarms but does not store them; the signals (`overfit_rt`,
  `sample_diversity`) are in metrics.jsonl, so the same `monitors.check_alarms`
  with the config's thresholds gives the same warnings, at every step they held.
  """
  mon = config.get("monitor", {})
  # As train.py: r_t says nothing where the loss leaves D's zero free.
  loss = losses.LOSSES.get(config.get("loss"))
  overfit = mon.get("overfit_threshold") if loss is None or loss.zero_is_boundary else None
  out = []
  for r in records:
    out += monitors.check_alarms(r, overfit, mon.get("collapse_threshold"))
  return out


def curves_png(records: Sequence[dict], keys: Sequence[str]) -> Optional[bytes]:
  """One PNG of the curves of `keys` present in the records (None if none is)."""
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "curves.png")
    visualize.plot_curves(records, path, keys)
    if not os.path.isfile(path):
      return None
    with open(path, "rb") as f:
      return f.read()


def spectrum_png(spectrum: Optional[dict]) -> Optional[bytes]:
  """Log power against frequency, samples and photos (eval JSON's `spectrum`): plaid and
  checkerboards show as a rise of the samples' curve at high frequencies."""
  if not spectrum or not all(k in spectrum for k in ("frequency", "real", "fake")):
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(5, 3.5))
  ax.plot(spectrum["frequency"], spectrum["real"], label="real photos", lw=1.5)
  ax.plot(spectrum["frequency"], spectrum["fake"], label="samples", lw=1.5)
  ax.set_xlabel("frequency (cycles / pixel)")
  ax.set_ylabel("log10 power")
  ax.set_title("radially averaged power spectrum")
  ax.legend()
  ax.grid(alpha=0.3)
  fig.tight_layout()
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "spectrum.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    with open(path, "rb") as f:
      return f.read()


def _img(data: Optional[bytes], alt: str, mime: str = "image/png", cls: str = "") -> str:
  if not data:
    return f"<p class=missing>{html.escape(alt)}: not available</p>"
  b64 = base64.b64encode(data).decode()
  return f'<img class="{cls}" alt="{html.escape(alt)}" src="data:{mime};base64,{b64}">'


def _file_bytes(path: Optional[str]) -> Optional[bytes]:
  try:
    with open(path, "rb") as f:
      return f.read()
  except (OSError, TypeError):
    return None


def _fmt(v) -> str:
  if isinstance(v, float):
    return f"{v:.4g}"
  return html.escape(str(v))


def metrics_table(ev: Optional[dict]) -> str:
  """Rows metric | value | real-vs-real floor, from one eval JSON."""
  if not ev:
    return "<p class=missing>no eval/step_N.json yet (python -m gemgan.evaluate --workdir=...)</p>"
  floor = ev.get("floor") or {}
  rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td><td>{_fmt(floor.get(k, ''))}"
                 "</td></tr>" for k, v in ev.items()
                 if isinstance(v, (int, float)) and k not in TABLE_SKIP + ("step", "seed"))
  head = (f"<p>step {ev.get('step', '?')}: {ev.get('num_fake', '?')} samples vs "
          f"{ev.get('num_real', '?')} real</p>")
  table = f"<table><tr><th>metric</th><th>run</th><th>floor</th></tr>{rows}</table>"
  pc = ev.get("per_class")
  if pc:
    worst = sorted(pc["classes"].items(), key=lambda kv: kv[1]["fid"] - kv[1]["floor"])[-5:]
    table += (f"<p>per-class FID: mean {_fmt(pc['intra_fid'])}, floor mean "
              f"{_fmt(pc['intra_fid_floor'])} (± {_fmt(pc['floor_std_over_classes'])} over "
              "classes); furthest from their floor: " + ", ".join(
                  f"{html.escape(n)} {v['fid']:.0f} (floor {v['floor']:.0f})"
                  for n, v in reversed(worst)) + "</p>")
  return head + table


def _dataset_html(run: dict) -> str:
  d = run["dataset"]
  data = run["config"].get("data", {})
  if d is None:
    return (f"<p>{html.escape(str(data.get('name', '?')))} at {data.get('image_size', '?')} px"
            " (no prepared-dataset summary found: synthetic data, or prepared elsewhere)</p>")
  def counts(m):
    return ", ".join(f"{k} {v}" for k, v in (m or {}).items()) or "none"
  return (f"<p>{html.escape(str(data.get('name', '?')))} at {data.get('image_size', '?')} px "
          f"from {html.escape(str(d.get('source', '?')))}: kept {html.escape(counts(d.get('kept')))};"
          f" skipped {html.escape(counts(d.get('skipped')))}; converted "
          f"{html.escape(counts(d.get('converted')))}</p>")


def run_section(run: dict) -> str:
  """The HTML of one run: one column of the page."""
  records, grids = run["records"], run["grids"]
  last = records[-1]["step"] if records else "?"
  parts = [f"<h2>{html.escape(os.path.basename(run['workdir']))}</h2>",
           f"<p class=path>{html.escape(run['workdir'])}; last logged step {last}</p>",
           "<h3>Latest samples</h3>",
           _img(_file_bytes(grids[-1]) if grids else None,
                f"latest grid (step {_step_of(grids[-1])})" if grids else "latest grid",
                cls="large"),
           "<h3>Metrics against the real-vs-real floor</h3>", metrics_table(run["eval"])]
  spectrum = (run["eval"] or {}).get("spectrum")
  if spectrum:
    parts += ["<h3>Power spectrum</h3>",
              _img(spectrum_png(spectrum), "power spectrum", cls="curves")]
  parts.append("<h3>Curves</h3>")
  eval_keys = sorted({k for r in records for k in r if k.startswith("eval/")})
  for title, keys in CURVE_GROUPS + (("eval", tuple(eval_keys)),):
    # A signal that is 0 throughout (r1_penalty of a run without R1) is left out.
    keys = [k for k in keys if any(r.get(k, 0) != 0 for r in records)]
    if keys:
      parts.append(_img(curves_png(records, keys), f"{title} curves", cls="curves"))
  alarms = fired_alarms(records, run["config"])
  parts.append(f"<h3>Alarms ({len(alarms)})</h3>")
  parts.append("<ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in alarms[:50]) + "</ul>"
               if alarms else "<p>none fired (recomputed from metrics.jsonl)</p>")
  parts.append("<h3>Samples over training</h3>")
  parts.append("<div class=strip>" + "".join(
      f"<figure>{_img(_file_bytes(g), f'step {_step_of(g)}', cls='thumb')}"
      f"<figcaption>step {_step_of(g)}</figcaption></figure>" for g in grids) + "</div>"
      if grids else "<p class=missing>no samples/step_N.png yet</p>")
  if run["walk"]:
    parts += ["<h3>Latent walk</h3>", _img(_file_bytes(run["walk"]), "latent walk", "image/gif",
                                                   cls="walk")]
  parts += ["<h3>Dataset</h3>", _dataset_html(run), "<h3>Config</h3>",
            f"<details><summary>config.json</summary><pre>"
            f"{html.escape(json.dumps(run['config'], indent=1))}</pre></details>"]
  return "<section>" + "\n".join(parts) + "</section>"


STYLE = """body{font-family:sans-serif;margin:1em;background:#fafafa}
main{display:grid;grid-template-columns:repeat(var(--runs),minmax(0,1fr));gap:1.5em}
img.large{width:100%;max-width:640px;image-rendering:pixelated}
img.curves{max-width:100%} img.walk{height:256px;image-rendering:pixelated} img.thumb{width:160px;image-rendering:pixelated}
.strip{display:flex;flex-wrap:wrap;gap:.5em} figure{margin:0;text-align:center}
table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
.missing{color:#a60} .path{color:#666;font-size:small} pre{font-size:small;overflow:auto}"""


def render_page(runs: Sequence[dict]) -> str:
  """The whole page for one run, or several side by side."""
  title = " vs ".join(os.path.basename(r["workdir"]) for r in runs)
  body = "\n".join(run_section(r) for r in runs)
  return (f"<!doctype html><html><head><meta charset=utf-8><title>gemgan report: "
          f"{html.escape(title)}</title><style>{STYLE}</style></head><body>"
          f"<h1>gemgan report: {html.escape(title)}</h1>"
          f'<main style="--runs:{len(runs)}">{body}</main></body></html>')


def write_report(workdir: str, compare: Sequence[str] = (), out: str = "") -> str:
  """Writes the page (default `workdir/report.html`) and returns its path."""
  for d in (workdir, *compare):
    if not os.path.isdir(d):
      raise FileNotFoundError(f"workdir {d!r} does not exist")
  page = render_page([load_run(d) for d in (workdir, *compare)])
  out = out or os.path.join(workdir, "report.html")
  tmp = out + ".tmp"
  with open(tmp, "w") as f:
    f.write(page)
  os.replace(tmp, out)
  return out


def main(argv):
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  f = flags.FLAGS
  try:
    print(write_report(f.workdir, f.compare or (), f.out))
  except FileNotFoundError as e:
    raise app.UsageError(str(e)) from e


if __name__ == "__main__":
  from absl import app as _app  # pylint: disable=g-import-not-at-top
  from absl import flags as _flags  # pylint: disable=g-import-not-at-top
  _flags.DEFINE_string("workdir", None, "Run to report on.", required=True)
  _flags.DEFINE_multi_string("compare", None, "More runs to put beside it.")
  _flags.DEFINE_string("out", "", "HTML file to write; default: WORKDIR/report.html.")
  _app.run(main)
