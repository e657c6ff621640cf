#!/usr/bin/env bash
# One-call GPU check (H200, ~6 min): run from the repository root on the GPU
# machine; writes everything under $OUT (default ./gpu-check-out).
#
# Prepared on the developer machine (both folders are git-ignored):
#   .whl/          wheels missing there (cp312 manylinux): torch-fidelity, geomloss, pot
#                  (see README "Performance" for the pip download command)
#   .device-data/  cifar10-jpeg.tar.xz and inception-2015-12-05-fp16.pth from ../shared/data/device/
# Then, through the device tool:  bash benchmarks/gpu_check.sh   (carry .whl and .device-data)
#
# Steps: (1) capture-vs-eager equivalence test, (2) speed table for every
# regularizer (a1 and a2, 32x32, batch 64; eager fp32 and captured bf16),
# (3) FID(train 50k, test 10k) of the CIFAR-10 JPEG copy through wae-bench's
# code path (reference 3.1177), (4) one short real MoCA training run on
# CIFAR-10 with its FID of 10,000 samples.
# SMALL=1 shrinks every step so the script can be dry-run on a CPU.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-check-out}
SMALL=${SMALL:-0}
mkdir -p "$OUT"
log() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$OUT/summary.txt"; }

if [ -d .whl ]; then   # the GPU machine: carried wheels, then this project (its entry points) into /tmp/site
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site . || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
DATA=${DATA:-/tmp/wae-data}
W=${W:-/tmp/wae-inception.pth}
if [ -f .device-data/cifar10-jpeg.tar.xz ] && [ ! -d "$DATA/train" ]; then
  mkdir -p "$DATA" && tar -xJf .device-data/cifar10-jpeg.tar.xz -C "$DATA"
fi
if [ -f .device-data/inception-2015-12-05-fp16.pth ] && [ ! -f "$W" ]; then
  python3 - "$W" <<'PY'
import sys, torch   # expand the compact fp16 copy (as ../shared/tools/expand_inception_fp16.py)
blob = torch.load(".device-data/inception-2015-12-05-fp16.pth", map_location="cpu")
sd = {k: v.float() for k, v in blob["fp16"].items()}
sd.update({k: torch.full(shape, value) for k, (shape, value) in blob["const"].items()})
sd.update(blob["other"])
torch.save(sd, sys.argv[1])
PY
fi
export WAE_BENCH_CACHE=/tmp/wae-cache WAE_BENCH_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$OUT/summary.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/summary.txt"

if [ "$SMALL" = 1 ]; then STEPS=1; REP=1; WARM=1; ARCHS=a1; REGS=moca; LIMIT=200; EPOCHS=1; MAXSTEPS="--set max_steps=4"; FIDN=100; FEAT="--features standin"
else STEPS=50; REP=7; WARM=10; ARCHS="a1 a2"; REGS=all; LIMIT=0; EPOCHS=2; MAXSTEPS=""; FIDN=10000; FEAT=""; fi

log "1. captured step == eager step"
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_graph.py 2>&1 | tail -3 | tee -a "$OUT/summary.txt"

log "2. speed (ms/step, trainer vs plain-PyTorch loops in the same process)"
for arch in $ARCHS; do
  for mode in "--precision fp32 --step-mode eager" "--precision bf16 --step-mode graph --channels-last"; do
    tag="$arch-$(echo $mode | tr -d ' -' | sed 's/precision//;s/stepmode/-/;s/channelslast/-cl/')"
    timeout 400 python3 benchmarks/speed.py --arch $arch --image-size 32 --batch-size 64 --K 30000 --regs $REGS \
      --steps $STEPS --repeats $REP --warmup $WARM $mode --out "$OUT/speed-$tag.json" 2>&1 | tail -12 | tee -a "$OUT/summary.txt"
  done
done

log "3. FID(train, test) of the CIFAR-10 JPEG copy (reference: 3.1177)"
timeout 300 python3 benchmarks/fid_reference.py --dataset cifar10 --data-root "$DATA" --variant cifar10-jpeg-q75 \
  --fid-weights "$W" --limit $LIMIT --out "$OUT/fid-reference.json" 2>&1 | tail -12 | tee -a "$OUT/summary.txt"

log "4. MoCA a1 on CIFAR-10, $EPOCHS epochs, captured bf16 channels-last step, FID of $FIDN samples"
timeout 600 python3 -m wae_bench run --reg moca --dataset cifar10 --data-root "$DATA" --arch a1 --epochs $EPOCHS \
  $MAXSTEPS --precision bf16 --set step_mode=graph --set channels_last=true --set data_variant=cifar10-jpeg-q75 --out /tmp/wae-run \
  --fid-weights "$W" --fid-samples $FIDN $FEAT --what samples,rec --quiet 2>&1 | tail -15 | tee -a "$OUT/summary.txt"
cp /tmp/wae-run/results.json "$OUT/moca-a1-results.json" 2>/dev/null
cp /tmp/wae-run/samples.png "$OUT/moca-a1-samples.png" 2>/dev/null
log "done"
