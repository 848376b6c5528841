#!/usr/bin/env bash
# GPU checks for generated projects: bf16 / fp16 mixed precision, NCCL DDP, torch.compile.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # from the repository root, on a CUDA machine
#
# Needs torch with CUDA and pytorch-lightning in the active Python. Uses every visible GPU
# for the DDP runs (at least 1; DDP runs are skipped with a single GPU). Each run trains the
# default spec for 2 epochs; the script stops at the first failure and prints a summary of
# the final test metrics of each run. Paste that summary into the issue note.
set -euo pipefail

PYTHON="${PYTHON:-python}"
OUT="${1:-$(mktemp -d -t scaffold-gpu-XXXX)}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
GPUS="$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())')"
if [ "$GPUS" -lt 1 ]; then
    echo "no CUDA device visible; nothing to check" >&2
    exit 2
fi
echo "GPUs: $GPUS  torch: $("$PYTHON" -c 'import torch; print(torch.__version__)')  out: $OUT"

for style in pytorch lightning; do
    "$PYTHON" -m torch_scaffold new --style "$style" -o "$OUT/$style" --force >/dev/null
done

SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"

run() {  # run NAME STYLE COMMAND...
    local name="$1" style="$2"
    shift 2
    echo "== $name"
    local start=$SECONDS
    (cd "$OUT/$style" && "$@" --max-epochs 2 --output-dir "runs/$name") >"$OUT/$name.log" 2>&1 || {
        echo "FAILED: $name (log: $OUT/$name.log)"
        tail -20 "$OUT/$name.log"
        exit 1
    }
    echo "$name: $((SECONDS - start)) s, $(grep '^test:' "$OUT/$name.log" | tail -1)" | tee -a "$SUMMARY"
}

for style in pytorch lightning; do
    for precision in 32 bf16-mixed 16-mixed; do
        run "$style-1gpu-$precision" "$style" \
            "$PYTHON" -m tabular_classifier.train --accelerator cuda --precision "$precision"
    done
    run "$style-1gpu-compile" "$style" \
        "$PYTHON" -m tabular_classifier.train --accelerator cuda --set trainer.compile=true
done

if [ "$GPUS" -ge 2 ]; then
    for precision in bf16-mixed 16-mixed; do
        # plain style: torchrun, NCCL process group, one process per GPU
        run "pytorch-ddp${GPUS}-$precision" pytorch \
            "$PYTHON" -m torch.distributed.run --nproc_per_node="$GPUS" \
            -m tabular_classifier.train --accelerator cuda --precision "$precision"
        # Lightning: its own launcher, strategy ddp
        run "lightning-ddp${GPUS}-$precision" lightning \
            "$PYTHON" -m tabular_classifier.train --accelerator cuda --precision "$precision" \
            --devices "$GPUS" --strategy ddp
    done
    # resume under DDP: one more epoch from last.ckpt
    (cd "$OUT/pytorch" && "$PYTHON" -m torch.distributed.run --nproc_per_node="$GPUS" \
        -m tabular_classifier.train --accelerator cuda --precision bf16-mixed \
        --output-dir "runs/pytorch-ddp${GPUS}-bf16-mixed" --max-epochs 3 --resume last) \
        >"$OUT/pytorch-ddp-resume.log" 2>&1 || { echo "FAILED: resume"; exit 1; }
    echo "pytorch-ddp-resume: $(grep '^resumed from' "$OUT/pytorch-ddp-resume.log")" | tee -a "$SUMMARY"
else
    echo "one GPU: DDP runs skipped" | tee -a "$SUMMARY"
fi

echo
echo "summary ($SUMMARY):"
cat "$SUMMARY"
