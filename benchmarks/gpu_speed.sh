#!/usr/bin/env bash
# One-call GPU speed check for what the first H200 call left open (the speed
# targets in benchmarks/results/h200-2026-11-28/README.md): the step time with
# the nets and the penalties compiled (torch.compile inside the captured step),
# and sinkhorn at its new ε-scaling.  Run from the repository root on the GPU
# machine, carrying only .whl (no data: speed.py times random batches):
#   OUT=$OUT bash benchmarks/gpu_speed.sh          (BUDGET seconds, default 540)
# Results: $OUT/summary.txt and $OUT/gpu-check.tar.gz (re-packed after each step).
#
# Steps, most important first; every speed row is a median of interleaved
# rounds against plain-PyTorch eager loops in the same process (speed.py):
#  1. a1 then a2, compiled, captured bf16 channels-last: ae and moca (the
#     step-time targets), with a per-kernel profile of the compiled MoCA step
#  2. a1 then a2, the same for ae, sinkhorn and rae-sn (the 1.3x rule), with
#     their profiles
#  3. the GPU tests of compiled steps (compiled [and captured] == eager)
#  4. a1 and a2, compiled: the other regularizers (vs the compiled ae)
#  5. a1 and a2, not compiled: ae and sinkhorn (ε-scaling 0.5, re-measured)
#  6. a1, moca with max-autotune-no-cudagraphs, if at least 300 s are left
# SMALL=1 shrinks every step so the script can be dry-run on a CPU.
set -uo pipefail
BUDGET=${BUDGET:-540}
source "$(dirname "$0")/gpu_setup.sh"

if [ "$SMALL" = 1 ]; then
  STEPS=1; REP=1; WARM=1; ARCHS=tiny; SIZE=16; K=4096; SECOND=ae,sinkhorn; REST=ae,swae; TESTSEL="gpu"
else
  STEPS=30; REP=5; WARM=5; ARCHS="a1 a2"; SECOND=ae,sinkhorn,rae-sn; REST=ae,wae-mmd,wae-gan,swae,rae-l2
  TESTSEL="gpu or matches"
fi
FAST=(--precision bf16 --step-mode graph --channels-last)

for arch in $ARCHS; do   # one speed.py call per group: a call cut off by its time cap reports nothing
  log "1. speed $arch, compiled, captured bf16 channels-last: ae, moca"
  speed "$arch" graph-bf16-cl-compile ae,moca 180 "${FAST[@]}" --compile default \
    --profile "$WORK/profile-$arch-graph-bf16-cl-compile.txt"
done
for arch in $ARCHS; do
  log "2. speed $arch, compiled, captured bf16 channels-last: $SECOND"
  speed "$arch" graph-bf16-cl-compile-2 "$SECOND" 120 "${FAST[@]}" --compile default \
    --profile "$WORK/profile-$arch-graph-bf16-cl-compile.txt" --profile-regs "${SECOND#ae,}"
done

log "3. GPU tests: compiled (and captured) steps == eager steps"
timeout "$(cap 150 20)" python3 -m pytest -q -p no:cacheprovider tests/test_compile.py tests/test_graph.py \
  -k "$TESTSEL" > "$WORK/test-compile-gpu.log" 2>&1
tail -6 "$WORK/test-compile-gpu.log" | tee -a "$WORK/summary.txt"; pack

for arch in $ARCHS; do
  log "4. speed $arch, compiled, captured bf16 channels-last: $REST"
  speed "$arch" graph-bf16-cl-compile-rest "$REST" 120 "${FAST[@]}" --compile default
done

for arch in $ARCHS; do
  log "5. speed $arch, not compiled, captured bf16 channels-last: ae, sinkhorn (ε-scaling 0.5)"
  speed "$arch" graph-bf16-cl-sinkhorn ae,sinkhorn 60 "${FAST[@]}"
done

if [ "$SMALL" != 1 ] && [ "$(cap 300)" -ge 300 ]; then
  log "6. speed a1, moca compiled with max-autotune-no-cudagraphs"
  speed a1 graph-bf16-cl-autotune ae,moca 280 "${FAST[@]}" --compile max-autotune-no-cudagraphs
fi

log "done"
pack
