#!/usr/bin/env bash
# One-call GPU check (H200, <= 9.5 min): run from the repository root on the
# GPU machine; every result lands in $OUT (default ./gpu-check-out) as
# summary.txt and gpu-check.tar.gz (re-packed after each step, so a run cut
# short still returns what it finished).
#
# Prepared on the developer machine (both folders are git-ignored):
#   .whl/          wheels missing there (cp312 manylinux): torch-fidelity, geomloss (pot, 33 MB,
#                  would not fit; benchmarks/GPU.md has the pip download command)
#   .device-data/  cifar10-jpeg.tar.xz and the xz-compressed FID weights (benchmarks/GPU.md)
# (The first GPU call, kept for reference; the next one is benchmarks/gpu_session.sh.)
# Then, through the device tool:  OUT=$OUT bash benchmarks/gpu_check.sh   (carry .whl and .device-data)
#
# Steps, most important first, each with its own time cap inside BUDGET seconds:
#  1. captured step == eager step (tests/test_graph.py on the GPU, fp32 and bf16)
#  2. speed, a1 then a2 (32x32, batch 64, K 30000): every regularizer's captured
#     bf16 channels-last step against plain-PyTorch eager loops in the same
#     process, with a per-kernel profile of the MoCA step
#  2b. the same for moca and ae with the nets compiled (--compile default; the
#     compile time is in each row's setup_s)
#  3. FID(train 50k, test 10k) through wae-bench's code path (reference 3.1177)
#     and the time of a 10k FID against cached statistics
#  4. one Table 1 tuning cell: MoCA, a1, CIFAR-10 (JPEG copy), λ = 1000 (the
#     paper's), batch 64, FID of 5,000 samples against the 5,000 held-out
#     validation images; 100 epochs if the step time of 2. lets it finish in
#     the time left, else as many epochs as fit (the results say how many)
#  5. speed, a1, eager fp32 (the framework's overhead without capture)
# SMALL=1 shrinks every step so the script can be dry-run on a CPU.
set -uo pipefail
BUDGET=${BUDGET:-580}
source "$(dirname "$0")/gpu_setup.sh"

if [ "$SMALL" = 1 ]; then
  STEPS=1; REP=1; WARM=1; REGS=moca,ae; ARCHS=a1; LIMIT=200; EPOCHS_MAX=1; SPE=782
  CELL_SETS=(--set train.max_steps=4 --set tune.fid_samples=100 --set eval.features=standin); TESTSEL="not matches"
  FIDFEAT="--features standin"
else
  STEPS=30; REP=5; WARM=5; REGS=all; ARCHS="a1 a2"; LIMIT=0; EPOCHS_MAX=100; SPE=782; CELL_SETS=(); TESTSEL="matches"; FIDFEAT=""
fi

log "1. captured step == eager step"
timeout "$(cap 120)" python3 -m pytest -q -p no:cacheprovider tests/test_graph.py -k "$TESTSEL" > "$WORK/test-graph.log" 2>&1
tail -4 "$WORK/test-graph.log" | tee -a "$WORK/summary.txt"; pack

for arch in $ARCHS; do
  log "2. speed $arch: captured bf16 channels-last step vs plain eager fp32 loops"
  speed "$arch" graph-bf16-cl "$REGS" 150 --precision bf16 --step-mode graph --channels-last \
    --profile "$WORK/profile-$arch-graph-bf16-cl.txt"
done

for arch in $ARCHS; do
  log "2b. speed $arch: the same with the nets compiled (torch.compile inside the captured step)"
  speed "$arch" graph-bf16-cl-compile moca,ae 150 --precision bf16 --step-mode graph --channels-last \
    --compile default
done

log "3. FID(train, test) of the CIFAR-10 JPEG copy (reference: 3.1177)"
timeout "$(cap 120 200)" python3 benchmarks/fid_reference.py --dataset cifar10 --data-root "$DATA" --variant cifar10-jpeg-q75 \
  --fid-weights "$W" --limit $LIMIT $FIDFEAT --out "$WORK/fid-reference.json" > "$WORK/fid-reference.log" 2>&1
tail -22 "$WORK/fid-reference.log" | tee -a "$WORK/summary.txt"
pack

# 4. the Table 1 cell: as many epochs (<= 100) as the measured MoCA step time lets finish, 90 s kept for eval
EPOCHS=$(python3 - "$WORK/speed-a1-graph-bf16-cl.json" "$((BUDGET - (SECONDS - START) - 45))" "$EPOCHS_MAX" "$SPE" <<'PY'
import json, sys
try:
    ms = next(r["ms_per_step"] for r in json.load(open(sys.argv[1]))["rows"] if r["regularizer"] == "moca")
except Exception:
    ms = 4.0
left, emax, spe = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(max(1, min(emax, int((left - 90) / (1.15 * ms / 1e3 * spe)))))
PY
)
log "4. Table 1 tuning cell tune-moca-a1-cifar10-lambda1000-s0: $EPOCHS epochs, captured bf16 channels-last step, FID of 5,000 samples vs the validation split"
bench_cells "$(cap 500 25)" benchmarks/table1-cifar10.toml tune-moca-a1-cifar10-lambda1000-s0 "$EPOCHS" \
  "$WORK/table1-cell.log" --set tune.epochs="$EPOCHS" "${CELL_SETS[@]}"
tail -25 "$WORK/table1-cell.log" | tee -a "$WORK/summary.txt"; pack

log "5. speed a1: eager fp32 trainer vs plain eager fp32 loops"
speed a1 eager-fp32 moca,ae 150 --steps "$((STEPS / 2 > 0 ? STEPS / 2 : 1))" --repeats 3

log "done"
pack
