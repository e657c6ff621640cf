#!/usr/bin/env bash
# The one GPU call for the open GPU issues: Table 1 by measurement (issue 17,
# section 3) and throughput (issue 15, section 3), <= 9 minutes of GPU time
# (BUDGET=540 s).  Run from the repository root on the GPU machine with
# .whl and .device-data carried (benchmarks/GPU.md: how to prepare them and the
# exact device call):
#   OUT=$OUT bash benchmarks/gpu_session.sh
# Every part runs under its own `timeout` (a cap loses only that part; a bench
# stopped by it checkpoints its running cells and records what finished), and
# $OUT/summary.txt, $OUT/gpu-check.tar.gz and $OUT/gpu-pictures.tar.gz are
# re-packed after each part (gpu_setup.sh's pack says what goes in which).
#
# Parts, in the order of need:
#  0. the GPU tests of the captured step: capture == eager for every plugin, the
#     run's generator registered with the graph (tests/test_graph.py)
#  1. issue 17 3(a)+(b) at once, 7 cells concurrently (bench --concurrent 7) on
#     the CIFAR-10 JPEG copy, captured bf16 channels-last step: AE a1 at 100
#     epochs scored for samples, REC, N, GMM and Interp with the linear decoder
#     output of our nets (issue 17 section 2: the RAE authors' AE scores GMM FID
#     76.47; the same cell with their sigmoid output is an AE grid axis
#     decoder_output, so the results folder's spec adds it, and runs in part 3),
#     and the MoCA a1 tuning
#     cells at 30 epochs for lambda in {10, 30, 100, 300, 1000, 3000}, each scored by
#     FID of 5,000 prior samples on the validation split (5,000 held-out training
#     images), with its reconstruction error, moca/neg and latent spectrum
#     (benchmarks/cells_summary.py prints them per lambda)
#  2. issue 15 3: aggregate images/s of MoCA a1 and a2 cells at N = 1, 2, 4, 8
#     concurrently (benchmarks/throughput.py: N runs on N streams), the same N
#     cells as one stacked model (benchmarks/stacked.py: the torch.func
#     alternative, kept if faster), then (after the GPU tests of compiled
#     steps against eager ones, tests/test_compile.py, under a cap of their
#     own, so they run only where the compiled timings do) the step-time targets with the
#     nets compiled (benchmarks/speed.py: ae and moca, a1 then a2), throughput
#     compiled, and the 1.3x rule for the other regularizers compiled (a1)
#  3. what fits after, 10 cells at once: part 1's AE a1 cell if its cap cut it
#     (it resumes from the checkpoint the cap's SIGTERM wrote; skipped if done),
#     the MoCA a1 tuning cell at lambda =
#     10,000 (the last of the spec's a1 grid, 10 ... 10,000: the a1 final cell
#     waits for it; left out of part 1, where at the paper's 1000 the decoder
#     already starved, to keep part 1's AE cell inside its cap), the AE a1 cell
#     with a sigmoid decoder output, the MoCA a2 tuning cells (7 lambdas, 30
#     epochs), then MoCA a2 at 100 epochs at its tuned lambda
# SMALL=1 shrinks every part (tiny step counts, stand-in features, CPU-sized
# nets for the speed parts) so the script can be dry-run on a CPU:
#   SMALL=1 DATA=../shared/data bash benchmarks/gpu_session.sh
set -uo pipefail
# (SMALL=1 on a CPU: 900 s, so that a loaded CPU still reaches the last part)
BUDGET=${BUDGET:-$([ "${SMALL:-0}" = 1 ] && echo 900 || echo 540)}
source "$(dirname "$0")/gpu_setup.sh"

SPEC=benchmarks/table1-cifar10.toml
A1_GRID=(10 30 100 300 1000 3000)
# the AE cells twice, linear and sigmoid decoder output (both parts: one results folder, one spec)
AE_OUTPUTS=(--set 'reg.ae.grid.decoder_output=["linear","sigmoid"]')
FAST=(--precision bf16 --step-mode graph --channels-last)
STACKED=()
if [ "$SMALL" = 1 ]; then   # the tiny net for both archs (a1 trains at images per second on a CPU); fp32
  # (bf16 autocast on a CPU without bf16 units is many times slower)
  A1=tiny; A2=tiny
  CELL_SETS=(--set train.max_steps=4 --set tune.max_steps=4 --set eval.fid_samples=64 --set tune.fid_samples=64
             --set eval.features=standin --set train.ckpt_every=2 --set train.precision=fp32
             --set 'bench.archs=["tiny"]')
  FAST=(--precision fp32 --step-mode graph --channels-last)
  STACKED=(--precision fp32 --step-mode eager)   # (a CUDA graph needs a GPU)
  TESTSEL=(-k "warmup or falls_back"); NS=1,2; TSTEPS=3; WARM=1; STEPS=1; REP=1; TARCH=tiny; SIZE=16; K=4096
  SPEED_ARCHS=tiny; OTHERS=ae,swae
  CAP_TESTS=200; CAP_COMPILE=60; CAP_A=420; CAP_T=60; CAP_ST=60; CAP_S=90; CAP_C=300
else
  A1=a1; A2=a2
  CELL_SETS=()
  TESTSEL=(-m gpu); NS=1,2,4,8; TSTEPS=300; WARM=20; STEPS=30; REP=5; TARCH=""; SPEED_ARCHS="a1 a2"
  # every built-in but moca (timed in 2b), after ae, the reference: wae-bench's own entry points
  OTHERS=$(python3 -c "from importlib.metadata import distribution as d; print(','.join(['ae', *sorted(
    e.name for e in d('wae-bench').entry_points if e.group == 'wae_bench.regularizers' and e.name not in ('ae', 'moca'))]))")
  CAP_TESTS=75; CAP_COMPILE=45; CAP_A=330; CAP_T=45; CAP_ST=30; CAP_S=70; CAP_C=600
fi

A1_CELLS="ae-$A1-cifar10-decoder_output_linear-s0$(printf ",tune-moca-$A1-cifar10-lambda%s-s0" "${A1_GRID[@]}")"

log "0. GPU tests: captured step == eager step for every plugin (the run's generator in the graph)"
timeout "$(cap "$CAP_TESTS" 400)" python3 -m pytest -q -p no:cacheprovider tests/test_graph.py tests/test_benchmarks.py "${TESTSEL[@]}" \
  > "$WORK/test-graph.log" 2>&1
tail -4 "$WORK/test-graph.log" | tee -a "$WORK/summary.txt"; pack

log "1. AE $A1 100 epochs + MoCA $A1 lambda grid (${A1_GRID[*]}) at 30 epochs: 7 cells at once"
bench_cells "$(cap "$CAP_A" 100)" "$SPEC" "$A1_CELLS" 100 "$WORK/table1-a1.log" --concurrent 7 "${AE_OUTPUTS[@]}" \
  "${CELL_SETS[@]}"
grep -v "│\|┃\|━\|─" "$WORK/table1-a1.log" | grep -v "^\s*$" | tail -30 | tee -a "$WORK/summary.txt"
python3 benchmarks/cells_summary.py "$WORK/table1-cifar10" --json "$WORK/cells-summary.json" 2>&1 \
  | tee -a "$WORK/summary.txt"; pack

for arch in ${TARCH:-a1 a2}; do
  log "2a. throughput $arch: MoCA cells at N = $NS at once, captured bf16 channels-last, not compiled"
  at_once throughput "$arch" graph-bf16-cl "$CAP_T" "${FAST[@]}"
done
for arch in ${TARCH:-a1 a2}; do   # (after both archs' streams: those are what bench --concurrent runs today)
  log "2a'. the alternative, $arch: the same N cells as one stacked model (torch.func.vmap), captured bf16"
  at_once stacked "$arch" graph-bf16 "$CAP_ST" "${STACKED[@]}"
done
log "2b0. GPU tests: compiled (Triton) step == eager step (tests/test_compile.py), before the compiled timings"
timeout "$(cap "$CAP_COMPILE" 60)" python3 -m pytest -q -p no:cacheprovider tests/test_compile.py -m gpu \
  > "$WORK/test-compile.log" 2>&1
tail -4 "$WORK/test-compile.log" | tee -a "$WORK/summary.txt"; pack
for arch in $SPEED_ARCHS; do
  log "2b. speed $arch, compiled, captured bf16 channels-last: ae, moca (targets a1 <= 2.0 ms, a2 <= 5.0 ms)"
  speed "$arch" graph-bf16-cl-compile ae,moca "$CAP_S" "${FAST[@]}" --compile default
  log "2c. throughput ${TARCH:-$arch}: the same cells compiled"
  at_once throughput "${TARCH:-$arch}" graph-bf16-cl-compile "$CAP_T" "${FAST[@]}" --compile default
done
log "2d. speed ${SPEED_ARCHS%% *}, compiled: every regularizer against the trainer's ae (<= 1.3x, rae-gp exempt)"
speed "${SPEED_ARCHS%% *}" graph-bf16-cl-compile-all "$OTHERS" "$((CAP_S + 30))" "${FAST[@]}" --compile default

log "3. what fits: part 1's AE $A1 if cut, MoCA $A1 at lambda 10000, AE $A1 with sigmoid output, the MoCA $A2 lambda grid at 30 epochs, then MoCA $A2 100 epochs at its tuned lambda: 10 cells at once"
if [ "$(cap "$CAP_C" 30)" -ge 60 ]; then
  bench_cells "$(cap "$CAP_C" 30)" "$SPEC" "ae-$A1-cifar10-decoder_output_linear-s0,tune-moca-$A1-cifar10-lambda10000-s0,ae-$A1-cifar10-decoder_output_sigmoid-s0,tune-moca-$A2-cifar10-*,moca-$A2-cifar10-s0" 100 \
    "$WORK/table1-a2.log" --concurrent 10 "${AE_OUTPUTS[@]}" "${CELL_SETS[@]}"
  grep -v "│\|┃\|━\|─" "$WORK/table1-a2.log" | grep -v "^\s*$" | tail -20 | tee -a "$WORK/summary.txt"
  python3 benchmarks/cells_summary.py "$WORK/table1-cifar10" --json "$WORK/cells-summary.json" 2>&1 \
    | tee -a "$WORK/summary.txt"
else
  log "3. skipped: less than 60 s left"
fi

log "done"
pack
