#!/usr/bin/env bash
# GPU checks for generated projects: fp32 / bf16 / fp16, torch.compile, channels_last CNNs,
# cuDNN recurrent layers, NCCL DDP, resume under torchrun, and style parity on the GPU.
#
#   bash benchmarks/gpu_check.sh prepare DIR      # anywhere scaffold is installed: generate
#   bash benchmarks/gpu_check.sh run DIR [OUT]    # on the CUDA machine: train and report
#
# `prepare` writes four specs (default MLP, CNN, LSTM, transformer LM) in both styles under DIR.
# `run` needs only torch (with CUDA) and pytorch-lightning: the projects are run from their
# folders, not installed. Independent runs go in parallel (JOBS, default 6; the models are
# tiny), every run is kept going after a failure, and the summary ends with PASS or FAIL for
# each run. DDP uses every visible GPU; with one GPU, Lightning's ddp still builds a one-process
# NCCL group, and the plain style (which forms a group only for two or more processes) is run
# under torchrun to check the launch and resume path.
set -uo pipefail

PYTHON="${PYTHON:-python}"
ACCEL="${ACCEL:-cuda}"  # ACCEL=cpu: a dry run of the plumbing here (fp16 runs then fail)
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SPECS=(default cnn_classification rnn_sequence_classification transformer_lm)

prepare() {
    local dir="$1"
    for spec in "${SPECS[@]}"; do
        local file=()
        [ "$spec" = default ] || file=("$REPO/examples/specs/$spec.yaml")
        for style in pytorch lightning; do
            "$PYTHON" -m torch_scaffold new --style "$style" -o "$dir/$spec-$style" --force \
                "${file[@]}" >/dev/null || exit 1
        done
    done
    echo "generated ${#SPECS[@]} specs x 2 styles under $dir"
}

package_of() { basename "$(dirname "$(ls "$1"/*/train.py)")"; }

# job NAME PROJECT EPOCHS COMMAND...: run COMMAND in PROJECT in the background; record the result
job() {
    local name="$1" project="$2" epochs="$3"
    shift 3
    while [ "$(jobs -rp | wc -l)" -ge "${JOBS:-6}" ]; do wait -n; done
    (
        cd "$PROJECTS/$project" || exit 1
        start=$SECONDS
        "$@" --max-epochs "$epochs" --output-dir runs --name "$name" >"$OUT/logs/$name.log" 2>&1
        rc=$?
        verdict=PASS
        [ $rc -eq 0 ] || verdict="FAIL rc=$rc"
        # progress bars redraw with \r, so a result can follow one on the same line
        last="$(tr '\r' '\n' <"$OUT/logs/$name.log" | grep -aoE '^(test:|resumed from|parity:).*' |
            tail -2 | tr '\n' ' ')"
        printf '%-34s %-10s %4ss  %s\n' "$name" "$verdict" "$((SECONDS - start))" "$last" \
            >"$OUT/results/$name"
    ) &
}

train() {  # train PROJECT: the command line of that project's training module
    echo "$PYTHON" -m "$(package_of "$PROJECTS/$1").train --accelerator $ACCEL"
}

run_checks() {
    PROJECTS="$(cd "$1" && pwd)"
    OUT="${2:-$(mktemp -d -t scaffold-gpu-XXXX)}"
    mkdir -p "$OUT/logs" "$OUT/results"
    rm -f "$OUT"/results/*
    export OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1
    local gpus
    gpus="$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())')" || exit 2
    [ "$ACCEL" = cuda ] || gpus=1
    if [ "$gpus" -lt 1 ]; then echo "no CUDA device visible; nothing to check" >&2; exit 2; fi
    "$PYTHON" -c 'import torch, pytorch_lightning as pl
print(f"torch {torch.__version__}, lightning {pl.__version__}", torch.cuda.is_available() and torch.cuda.get_device_name())'
    echo "GPUs: $gpus  projects: $PROJECTS  out: $OUT"

    for style in pytorch lightning; do
        # precision and compile on the default MLP
        for precision in 32 bf16-mixed 16-mixed; do
            job "mlp-$style-$precision" "default-$style" 2 $(train "default-$style") \
                --precision "$precision"
        done
        job "mlp-$style-compile-bf16" "default-$style" 2 $(train "default-$style") \
            --precision bf16-mixed --set trainer.compile=true
        # channels_last CNN, cuDNN LSTM and attention under both mixed precisions
        for spec in cnn_classification rnn_sequence_classification transformer_lm; do
            for precision in bf16-mixed 16-mixed; do
                job "${spec%%_*}-$style-$precision" "$spec-$style" 2 $(train "$spec-$style") \
                    --precision "$precision"
            done
        done
    done
    # style parity on the GPU: deterministic kernels, per-step losses of both styles
    for case in default:32 default:bf16-mixed default:16-mixed cnn_classification:bf16-mixed \
        rnn_sequence_classification:bf16-mixed transformer_lm:bf16-mixed; do
        local spec="${case%%:*}" precision="${case#*:}"
        job "parity-${spec%%_*}-$precision" "$spec-pytorch" 4 \
            "$PYTHON" "$REPO/benchmarks/gpu_parity.py" "$PROJECTS/$spec-pytorch" \
            "$PROJECTS/$spec-lightning" --steps 60 -- --accelerator $ACCEL \
            --precision "$precision" --set trainer.deterministic=true
    done
    wait

    # DDP over every GPU, NCCL: Lightning strategy ddp; plain style under torchrun
    local port=29600
    for precision in bf16-mixed 16-mixed; do
        job "ddp${gpus}-lightning-$precision" default-lightning 2 $(train default-lightning) \
            --precision "$precision" --devices "$gpus" --strategy ddp
        job "ddp${gpus}-pytorch-$precision" default-pytorch 2 \
            "$PYTHON" -m torch.distributed.run --nproc_per_node="$gpus" --master_port=$((port++)) \
            -m "$(package_of "$PROJECTS/default-pytorch").train" --accelerator $ACCEL \
            --precision "$precision"
    done
    wait
    # resume under torchrun: one more epoch from the bf16 run's last.ckpt
    job "ddp${gpus}-pytorch-resume" default-pytorch 3 \
        "$PYTHON" -m torch.distributed.run --nproc_per_node="$gpus" --master_port=$port \
        -m "$(package_of "$PROJECTS/default-pytorch").train" --accelerator $ACCEL \
        --precision bf16-mixed --resume "runs/ddp${gpus}-pytorch-bf16-mixed/checkpoints/last.ckpt"
    wait

    echo
    cat "$OUT"/results/* | tee "$OUT/summary.txt"
    tar -czf "$OUT/logs.tar.gz" -C "$OUT" logs
    local failed
    failed="$(grep -c ' FAIL' "$OUT/summary.txt")"
    echo "$(wc -l <"$OUT/summary.txt") runs, $failed failed"
    for log in $(grep ' FAIL' "$OUT/summary.txt" | cut -d' ' -f1); do
        echo "--- $log"
        tail -15 "$OUT/logs/$log.log"
    done
    [ "$failed" -eq 0 ]
}

case "${1:-}" in
    prepare) prepare "${2:?usage: gpu_check.sh prepare DIR}" ;;
    run) run_checks "${2:?usage: gpu_check.sh run DIR [OUT]}" "${3:-}" ;;
    *) echo "usage: gpu_check.sh prepare DIR | run DIR [OUT]" >&2; exit 2 ;;
esac
