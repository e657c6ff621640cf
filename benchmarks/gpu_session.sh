#!/usr/bin/env bash
# The one GPU call for the open GPU issues: Table 1 by measurement (issue 17,
# section 3) and throughput (issue 15, section 3), <= 9 minutes of GPU time
# (BUDGET=540 s).  Run from the repository root on the GPU machine with
# .whl and .device-data carried (benchmarks/GPU.md: how to prepare them and the
# exact device call):
#   OUT=$OUT bash benchmarks/gpu_session.sh
# Every part runs under its own `timeout` (a cap loses only that part; a bench
# stopped by it checkpoints its running cells and records what finished); a
# part left less than its minimum is skipped with a line saying so.
# $OUT/summary.txt, $OUT/gpu-check.tar.gz and $OUT/gpu-pictures.tar.gz are
# re-packed after each part and every 30 s in between (gpu_setup.sh's pack),
# so a call cut in the middle of a part still brings back what it finished.
#
# It continues what earlier calls committed: the newest
# benchmarks/results/h200-*/table1-cifar10 bench folder (cells without
# checkpoints: a done cell is skipped, tuning choices are made from them) is
# copied into the work folder first, if the bench accepts it as this spec's;
# a throughput measurement already committed is not repeated.
#
# Parts, in the order of need (the figures no later call can do without first):
#  0. the GPU tests of the captured step: capture == eager for every plugin, the
#     run's generator registered with the graph (tests/test_graph.py)
#  1. issue 15: aggregate images/s of MoCA a1 cells at N = 1, 2, 4, 8 at once
#     (benchmarks/throughput.py: N runs on N streams, as bench --concurrent),
#     and of AE a1 cells at N = 1, 4 (the other regularizers' estimates);
#     about 40 s, and it says how many cells the later parts should run at once
#  2. issue 17 section 2, the pipeline check "before anything else": AE a1 at 100
#     epochs on the CIFAR-10 JPEG copy, captured bf16 channels-last step, scored
#     for samples, REC, N, GMM and Interp (the RAE authors' AE: GMM FID 76.47),
#     beside the MoCA a1 tuning cell at lambda = 100 (bench --concurrent 2)
#  3. issue 17 3(b): the other MoCA a1 tuning cells (30 epochs, lambda 10 ...
#     10,000, two at a time: a cut loses at most the two running), each scored by
#     FID of 5,000 prior samples on the validation split (5,000 held-out training
#     images), with its reconstruction error, moca/neg and latent spectrum
#     (benchmarks/cells_summary.py prints them per lambda), then MoCA a1 at 100
#     epochs at its tuned lambda (it waits until every a1 tuning cell is done:
#     in this call or a later one)
#  4. issue 15: the step-time targets with the nets compiled (after the GPU tests
#     of compiled steps against eager ones, tests/test_compile.py; benchmarks/speed.py
#     ae and moca, a1 <= 2.0 ms, then a2 <= 5.0 ms), a2's throughput, the
#     stacked (torch.func) alternative, compiled throughput, and the 1.3x rule
#     for the other regularizers compiled (a1, in small groups so that a cut
#     keeps the groups done)
#  5. issue 17 3(c): the AE a1 cell with the RAE authors' sigmoid output, the MoCA
#     a2 tuning cells, then MoCA a2 at 100 epochs at its tuned lambda
# SMALL=1 shrinks every part (tiny step counts, stand-in features, CPU-sized
# nets for the speed parts) so the script can be dry-run on a CPU:
#   SMALL=1 DATA=../shared/data bash benchmarks/gpu_session.sh
set -uo pipefail
# (SMALL=1 on a CPU: 900 s, so that a loaded CPU still reaches the last part)
BUDGET=${BUDGET:-$([ "${SMALL:-0}" = 1 ] && echo 900 || echo 540)}
source "$(dirname "$0")/gpu_setup.sh"

SPEC=benchmarks/table1-cifar10.toml
# the MoCA a1 tuning grid (the spec's: 7 values around the paper's 1000), lambda = 100 first (part 2)
A1_GRID=(10 30 300 1000 3000 10000)
# the AE cells twice, linear and sigmoid decoder output (one results folder, one spec)
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
  TESTSEL=(-k "warmup or falls_back"); NS=1,2; NS_AE=1,2; TSTEPS=3; WARM=1; STEPS=1; REP=1; TARCH=tiny; SIZE=16
  K=4096; SPEED_ARCHS=tiny; OTHERS=(ae,swae)
  CAP_TESTS=200; CAP_T=60; CAP_AE=420; CAP_A=400; CAP_COMPILE=60; CAP_ST=60; CAP_S=90; CAP_C=300; MIN_AE=60
else
  A1=a1; A2=a2
  CELL_SETS=()
  TESTSEL=(-m gpu); NS=1,2,4,8; NS_AE=1,4; TSTEPS=300; WARM=20; STEPS=30; REP=5; TARCH=""; SPEED_ARCHS="a1 a2"
  # every built-in but moca (timed in 4b), in groups of three after ae, the reference: a cut keeps the groups done
  mapfile -t OTHERS < <(python3 -c "from importlib.metadata import distribution as d
names = sorted(e.name for e in d('wae-bench').entry_points if e.group == 'wae_bench.regularizers' and e.name not in ('ae', 'moca'))
print('\n'.join('ae,' + ','.join(names[i:i + 3]) for i in range(0, len(names), 3)))")
  CAP_TESTS=75; CAP_T=45; CAP_AE=300; CAP_A=600; CAP_COMPILE=45; CAP_ST=30; CAP_S=70; CAP_C=600; MIN_AE=250
fi
FOLDER=$WORK/$(basename "$SPEC" .toml)
A1_TUNE=$(printf "tune-moca-$A1-cifar10-lambda%s-s0," "${A1_GRID[@]}")

# the bench folder earlier calls committed, if the bench takes it as this spec's: its dry run over
# every cell this call may run says which are stale (trained with settings other than the spec
# resolves to now, or cut before they were scored: the bench would refuse them), and those alone are
# moved aside (outside $WORK: not packed), so that the others continue
ALL_CELLS="ae-$A1-cifar10-decoder_output_linear-s0,tune-moca-$A1-cifar10-*,moca-$A1-cifar10-s0"
ALL_CELLS+=",ae-$A1-cifar10-decoder_output_sigmoid-s0,tune-moca-$A2-cifar10-*,moca-$A2-cifar10-s0"
SEED=$(ls -d benchmarks/results/h200-*/"$(basename "$FOLDER")" 2>/dev/null | sort | tail -1)
ASIDE=$WORK.aside
if [ -n "$SEED" ] && [ -f "$SEED/spec.json" ] && [ ! -d "$FOLDER" ]; then
  cp -r "$SEED" "$FOLDER"
  bench_cmd "$SPEC" "$ALL_CELLS" 100 "${AE_OUTPUTS[@]}" "${CELL_SETS[@]}"
  if timeout 60 "${BENCH[@]}" --dry-run --json > "$WORK/seed-check.json" 2> "$WORK/seed-check.log"; then
    mkdir -p "$ASIDE"
    STALE=$(python3 -c 'import json, sys
print(" ".join(c["id"] for c in json.load(open(sys.argv[1])) if c.get("state") == "stale"))' "$WORK/seed-check.json")
    for id in $STALE; do mv "$FOLDER/cells/$id" "$ASIDE/"; done
    log "continuing $SEED: $(ls "$FOLDER/cells" | wc -l) cell folder(s) copied (done cells are skipped)${STALE:+; stale, moved to $ASIDE: $STALE}"
  else
    mkdir -p "$ASIDE" && mv "$FOLDER" "$ASIDE/"
    log "not continuing $SEED: the bench refused it ($(grep -m1 "error" "$WORK/seed-check.log"))"
  fi
fi

if part 15 "0. GPU tests: captured step == eager step for every plugin (the run's generator in the graph)"; then
  timeout --foreground -k 20 "$(cap "$CAP_TESTS" 400)" python3 -m pytest -q -p no:cacheprovider tests/test_graph.py \
    tests/test_benchmarks.py "${TESTSEL[@]}" > "$WORK/test-graph.log" 2>&1
  echo "exit $?" >> "$WORK/test-graph.log"; tail -4 "$WORK/test-graph.log" | tee -a "$WORK/summary.txt"; pack
fi

for arch in ${TARCH:-a1}; do
  if committed "throughput-$arch-graph-bf16-cl.json" "$NS" > /dev/null; then
    log "1. throughput $arch: committed already ($(committed "throughput-$arch-graph-bf16-cl.json" "$NS")), not repeated"
  elif part 20 "1. throughput $arch: MoCA cells at N = $NS at once, captured bf16 channels-last"; then
    at_once throughput "$arch" graph-bf16-cl "$CAP_T" "${FAST[@]}"
  fi
  if committed "throughput-$arch-graph-bf16-cl-ae.json" "$NS_AE" > /dev/null; then
    log "1'. throughput $arch, AE: committed already, not repeated"
  elif part 15 "1'. throughput $arch: AE cells at N = $NS_AE (the other regularizers' estimates scale by MoCA's and the AE's factors)"; then
    NS=$NS_AE at_once throughput "$arch" graph-bf16-cl-ae 25 "${FAST[@]}" --regularizer ae
  fi
done

# (the AE cell needs about 245 s at one cell's speed: with less, the time goes to part 3's 53-s cells)
if part $((MIN_AE + 100)) "2. AE $A1 100 epochs (the pipeline check against 76.47) beside MoCA $A1 tuning at lambda 100 (30 epochs): 2 cells at once"; then
  bench_cells "$(cap "$CAP_AE" 100)" "$SPEC" "ae-$A1-cifar10-decoder_output_linear-s0,tune-moca-$A1-cifar10-lambda100-s0" \
    100 "$WORK/table1-part2.log" --concurrent 2 "${AE_OUTPUTS[@]}" "${CELL_SETS[@]}"
  cells_report "$WORK/table1-part2.log"
fi

if part 60 "3. MoCA $A1 lambda grid (${A1_GRID[*]}) at 30 epochs, 2 at a time, then MoCA $A1 100 epochs at its tuned lambda"; then
  bench_cells "$(cap "$CAP_A" 15)" "$SPEC" "${A1_TUNE}moca-$A1-cifar10-s0" 100 "$WORK/table1-part3.log" \
    --concurrent 2 "${AE_OUTPUTS[@]}" "${CELL_SETS[@]}"
  cells_report "$WORK/table1-part3.log"
fi

if part 90 "4a. GPU tests: compiled (Triton) step == eager step (tests/test_compile.py), before the compiled timings"; then
  timeout --foreground -k 20 "$(cap "$CAP_COMPILE" 60)" python3 -m pytest -q -p no:cacheprovider tests/test_compile.py -m gpu \
    > "$WORK/test-compile.log" 2>&1
  echo "exit $?" >> "$WORK/test-compile.log"; tail -4 "$WORK/test-compile.log" | tee -a "$WORK/summary.txt"; pack
fi
for arch in $SPEED_ARCHS; do
  if part 40 "4b. speed $arch, compiled, captured bf16 channels-last: ae, moca (targets a1 <= 2.0 ms, a2 <= 5.0 ms)"; then
    speed "$arch" graph-bf16-cl-compile ae,moca "$CAP_S" "${FAST[@]}" --compile default
  fi
done
for arch in ${TARCH:-a2}; do
  if committed "throughput-$arch-graph-bf16-cl.json" "$NS" > /dev/null; then
    log "4c. throughput $arch: committed already, not repeated"
  elif part 20 "4c. throughput $arch: MoCA cells at N = $NS at once, captured bf16 channels-last, not compiled"; then
    at_once throughput "$arch" graph-bf16-cl "$CAP_T" "${FAST[@]}"
  fi
done
for arch in ${TARCH:-a1 a2}; do
  if part 20 "4d. the alternative, $arch: the same N cells as one stacked model (torch.func.vmap), captured bf16"; then
    at_once stacked "$arch" graph-bf16 "$CAP_ST" "${STACKED[@]}"
  fi
done
if part 30 "4e. throughput ${TARCH:-a1}: MoCA cells compiled"; then
  at_once throughput "${TARCH:-a1}" graph-bf16-cl-compile "$CAP_T" "${FAST[@]}" --compile default
fi
for i in "${!OTHERS[@]}"; do
  if part 30 "4f. speed ${SPEED_ARCHS%% *}, compiled: ${OTHERS[$i]} (each <= 1.3x the trainer's ae, rae-gp exempt)"; then
    speed "${SPEED_ARCHS%% *}" "graph-bf16-cl-compile-others$i" "${OTHERS[$i]}" "$CAP_S" "${FAST[@]}" --compile default
  fi
done

if part 60 "5. AE $A1 with sigmoid output, the MoCA $A2 lambda grid at 30 epochs, then MoCA $A2 100 epochs at its tuned lambda: 2 at a time"; then
  bench_cells "$(cap "$CAP_C" 30)" "$SPEC" "ae-$A1-cifar10-decoder_output_sigmoid-s0,tune-moca-$A2-cifar10-*,moca-$A2-cifar10-s0" \
    100 "$WORK/table1-part5.log" --concurrent 2 "${AE_OUTPUTS[@]}" "${CELL_SETS[@]}"
  cells_report "$WORK/table1-part5.log"
fi

log "done"
pack
