#!/usr/bin/env bash
# The GPU measurements of issue 7 as one prepared command, for a session
# that is lent a GPU (device tool): the benchmark for the notebook's DCGAN
# and WGAN-GP at 96 px, fp32 and bf16, batch 64 and 256, one JSON line each
# in $OUT/bench.jsonl and a markdown table in $OUT/bench.md.
#
#   bash experiments/gpu/run.sh            # on the GPU machine, from the repo root
#   SMOKE=1 OUT=/tmp/g bash experiments/gpu/run.sh   # tiny sizes: checks the script on a CPU
#
# The GPU image has jax, flax, optax and absl but not ml-collections: carry
# its wheel (device README: pip download ... ml-collections==1.1.0 into
# .whl/) and the script installs whatever .whl/ holds. TensorFlow is not
# there and is too big to carry, so the benchmark skips the input pipeline
# (--noinput); training data in the benchmark are random images on the
# device anyway.
set -uo pipefail
OUT=${OUT:-/tmp/gemgan_gpu}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
python3 -c "import jax; print('jax', jax.__version__, jax.devices())" 2>&1 | tee "$OUT/env.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$OUT/env.txt" 2>&1

if [ -n "${SMOKE:-}" ]; then
  extra=(--config.data.image_size=16 --config.model.width=4 --repeats=1 --steps=1 --warmup=0)
  sizes="4"
else
  extra=(--repeats=5 --steps=10 --warmup=2)
  sizes="64 256"
fi
: > "$OUT/bench.jsonl"
for config in dcgan wgan_gp; do
  for precision in float32 bfloat16; do
    for batch in $sizes; do
      echo "== $config $precision batch $batch"
      timeout 300 python3 -m gemgan.benchmark --config="configs/$config.py" \
        --config.precision="$precision" --config.batch_size="$batch" --noinput --json \
        "${extra[@]}" 2> "$OUT/log_${config}_${precision}_${batch}.txt" | tail -1 | tee -a "$OUT/bench.jsonl"
    done
  done
done

python3 - "$OUT/bench.jsonl" > "$OUT/bench.md" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("| config | precision | batch | train img/s (min-max) | compile s | GFLOP/it | TFLOP/s | MFU (vs that precision's matmul peak) | sample img/s | device |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
  print(f"| {r['model']} n_critic {r['n_critic']} | {r['precision']} | {r['batch_size']} | "
        f"{r['train_images_per_sec']:.0f} ({r['train_images_per_sec_min']:.0f}-"
        f"{r['train_images_per_sec_max']:.0f}) | {r['compile_seconds']:.1f} | "
        f"{r['flops_per_iteration'] / 1e9:.0f} | {r['achieved_flops_per_sec'] / 1e12:.1f} | "
        f"{100 * r['mfu']:.0f} % | {r['sample_images_per_sec']:.0f} | {r['device']} |")
PY
cat "$OUT/bench.md"
