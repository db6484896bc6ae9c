#!/usr/bin/env bash
# Benchmark 6 (needs an NVIDIA GPU): one real variant, then prediction with its adapter.
#
#   bench/gpu.sh [--smoke]      env: VARIANT (llama32_3b_grammar_lora), STEPS (50), PREDICT_ROWS (200),
#                                    GPU (index, 0), PEAK_FLOPS (override), MPRTUNE_PROFILE (reference),
#                                    TRAIN_ARGS (extra key=value overrides for the training run, e.g.
#                                    "per_device_train_batch_size=16 gradient_accumulation_steps=1")
#
# Trains VARIANT from its rendered config (max_steps=STEPS, no checkpoints, no W&B) on one GPU,
# predicts PREDICT_ROWS eval rows with the adapter, and prints samples/s, tokens/s, peak GPU memory
# (nvidia-smi, sampled every 200 ms) and model FLOPs utilisation (bench/gpu_helper.py does the
# arithmetic). Needs the variant's data (`mprtune prepare-data <task>`) and access to the base model.
# Without a GPU it exits 77 ("skipped") with a message saying so.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "bench/gpu.sh: skipped: no NVIDIA GPU on this machine (nvidia-smi not found or sees no GPU); run it on a GPU node" >&2
    exit 77
fi

PY=${PY:-.venv/bin/python}
BIN=$(dirname "$PY")
VARIANT=${VARIANT:-llama32_3b_grammar_lora}
STEPS=${STEPS:-50}
ROWS=${PREDICT_ROWS:-200}
GPU=${GPU:-0}
if [[ "${1:-}" == "--smoke" ]]; then STEPS=5; ROWS=20; fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mprtune-bench-gpu-XXXXXX")
MON=""
cleanup() { [[ -n "$MON" ]] && kill "$MON" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
# PCI order: the same numbering as nvidia-smi -i.
export CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=$GPU DISABLE_VERSION_CHECK=1 WANDB_MODE=disabled PATH="$BIN:$PATH"
NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader -i "$GPU" | head -n1)

"$PY" bench/gpu_helper.py configs "$WORK" "$VARIANT" "$STEPS" "$ROWS"

run() {  # run STAGE: llamafactory-cli on WORK/STAGE.yaml while sampling the GPU's memory
    local stage=$1
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$GPU" -lms 200 >"$WORK/mem-$stage.txt" &
    MON=$!
    echo "bench/gpu.sh: $stage ($VARIANT on GPU $GPU, $NAME) ..." >&2
    local extra=()
    [[ "$stage" == train && -n "${TRAIN_ARGS:-}" ]] && read -r -a extra <<<"$TRAIN_ARGS"
    if ! "$BIN/llamafactory-cli" train "$WORK/$stage.yaml" ${extra[@]+"${extra[@]}"} >"$WORK/$stage.log" 2>&1; then
        tail -n 40 "$WORK/$stage.log" >&2
        echo "bench/gpu.sh: $stage failed (log above)" >&2
        exit 1
    fi
    kill "$MON" 2>/dev/null || true
    wait "$MON" 2>/dev/null || true
    MON=""
}
run train
run predict
"$PY" bench/gpu_helper.py report "$WORK" "$NAME"
