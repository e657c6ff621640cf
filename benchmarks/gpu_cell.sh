#!/usr/bin/env bash
# Train and score Table 1 cells on the GPU machine in one call (after
# gpu_check.sh, which measures the step time these budgets rest on):
#   CELLS=ae-a1-cifar10-s0 EPOCHS=100 OUT=$OUT bash benchmarks/gpu_cell.sh
# Same settings as gpu_check.sh's cell: CIFAR-10 JPEG copy, captured bf16
# channels-last step, FID of 10,000 samples; results in $OUT/gpu-check.tar.gz.
# The spec tunes every regularizer ([tune]): a tuned cell such as
# moca-a1-cifar10-s0 waits until its tuning cells are done, so name them too
# (CELLS='tune-moca-a1-cifar10-*,moca-a1-cifar10-s0'; their budget:
# EXTRA='--set tune.epochs=30'); ae-* cells have nothing to tune.
set -uo pipefail
BUDGET=${BUDGET:-300}
CELLS=${CELLS:?name the cells, e.g. CELLS=ae-a1-cifar10-s0}
EPOCHS=${EPOCHS:-100}
SPEC=${SPEC:-benchmarks/table1-cifar10.toml}
source "$(dirname "$0")/gpu_setup.sh"

log "cells $CELLS of $SPEC: $EPOCHS epochs, captured bf16 channels-last step"
# shellcheck disable=SC2086  # EXTRA: more --set options, split on spaces
bench_cells "$(cap "$BUDGET" 5)" "$SPEC" "$CELLS" "$EPOCHS" "$WORK/cells.log" ${EXTRA:-}
grep -v "│" "$WORK/cells.log" | tail -20 | tee -a "$WORK/summary.txt"
log "done"
pack
