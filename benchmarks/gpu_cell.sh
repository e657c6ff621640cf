#!/usr/bin/env bash
# Train and score Table 1 cells on the GPU machine in one call (after
# gpu_check.sh, which measures the step time these budgets rest on):
#   CELLS=ae-a1-cifar10-s0 EPOCHS=100 OUT=$OUT bash benchmarks/gpu_cell.sh
# Same settings as gpu_check.sh's cell: CIFAR-10 JPEG copy, captured bf16
# channels-last step, FID of 10,000 samples; results in $OUT/gpu-check.tar.gz.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-check-out}
WORK=${WORK:-/tmp/gpu-check}
BUDGET=${BUDGET:-300}
CELLS=${CELLS:?name the cells, e.g. CELLS=ae-a1-cifar10-s0}
EPOCHS=${EPOCHS:-100}
SPEC=${SPEC:-benchmarks/table1-cifar10.toml}
source "$(dirname "$0")/gpu_setup.sh"

log "cells $CELLS of $SPEC: $EPOCHS epochs, captured bf16 channels-last step"
timeout "$(cap "$BUDGET" 5)" python3 -m wae_bench bench "$SPEC" --only "$CELLS" \
  --out "$WORK/$(basename "$SPEC" .toml)" --data-root "$DATA" --fid-weights "$W" --quiet \
  --set train.epochs="$EPOCHS" --set train.data_variant=cifar10-jpeg-q75 --set train.step_mode=graph \
  --set train.precision=bf16 --set train.channels_last=true --set train.ckpt_every=20000 ${EXTRA:-} \
  > "$WORK/cells.log" 2>&1
echo "exit $?" >> "$WORK/cells.log"
grep -v "│" "$WORK/cells.log" | tail -20 | tee -a "$WORK/summary.txt"
log "done"
pack
