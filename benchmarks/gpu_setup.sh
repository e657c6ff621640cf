# Sourced by the GPU scripts (gpu_session.sh, gpu_check.sh, gpu_cell.sh, gpu_speed.sh): timing
# helpers, the carried wheels and this project installed into /tmp/site, the
# CIFAR-10 JPEG copy unpacked into $DATA and the compact FID weights expanded
# into $W.  Expects BUDGET (seconds) to be set.
OUT=${OUT:-$PWD/gpu-check-out}
WORK=${WORK:-/tmp/gpu-check}
SMALL=${SMALL:-0}
START=$SECONDS
mkdir -p "$OUT" "$WORK"
log() { echo "== $(date -u +%H:%M:%S) +$((SECONDS - START))s $*" | tee -a "$WORK/summary.txt"; }
# cap LIMIT [RESERVE]: a part's timeout, LIMIT or what the budget leaves after RESERVE s (at least 5)
cap() { local left=$((BUDGET - (SECONDS - START) - ${2:-0})); [ "$left" -lt "$1" ] && echo $((left > 5 ? left : 5)) || echo "$1"; }
# part MIN TEXT: log the part; false (and say so) when the budget leaves it less than MIN s
part() {
  local left=$((BUDGET - (SECONDS - START)))
  log "$2"
  [ "$left" -ge "$1" ] || { log "  skipped: $left s left, it needs at least $1 s"; return 1; }
}
# committed NAME [NS]: the newest committed benchmarks/results/h200-*/NAME (false: none); with NS
# (a throughput sweep's N list, 1,2,4,8) only a file holding a row for every N (a sweep its cap cut
# after N = 4 is not committed: the next call measures it again)
committed() {
  local f; f=$(ls -d benchmarks/results/h200-*/"$1" 2>/dev/null | sort | tail -1)
  [ -n "$f" ] || return 1
  [ -z "${2:-}" ] || python3 -c 'import json, sys
rows = json.load(open(sys.argv[1])).get("rows") or []
sys.exit(0 if {r.get("concurrency") for r in rows} >= set(map(int, sys.argv[2].split(","))) else 1)' "$f" "$2" \
    2>/dev/null || return 1
  echo "$f"
}
# pack: everything small the steps wrote, in two archives, since a file comes back only under
# 16 MiB (/work/.library/device/README.md, Limits) and a CIFAR-10 cell's grids are most of the
# bytes: gpu-check.tar.gz the numbers, logs, plots and each cell's sampler grids (samples.png,
# samples-gmm.png: what benchmarks/prune_pictures.py keeps), gpu-pictures.tar.gz the other grids
# (a nice-to-have: if it is too big to come back, nothing else is lost).  Checkpoints stay behind.
# Each archive is written under a temporary name and moved into place, so a call cut while
# packing leaves the previous whole archive; the background packer below re-packs every 30 s.
KEPT_PNG=(-name samples.png -o -name samples-gmm.png -o -path '*/plots/*')
# (one pack at a time, so an older snapshot never lands last; without flock, unserialised)
if command -v flock >/dev/null; then pack() { ( flock 9; _pack ) 9>"$WORK/.pack.lock"; }; else pack() { _pack; }; fi
_pack() {
  local tmp=".pack-$BASHPID"
  cp "$WORK/summary.txt" "$OUT/$tmp.txt" && mv -f "$OUT/$tmp.txt" "$OUT/summary.txt"
  (cd "$WORK" && find . -type f \( -name '*.json' -o -name '*.jsonl' -o -name '*.txt' -o -name '*.md' \
     -o -name '*.csv' -o -name '*.log' -o -name '*.toml' -o \( -name '*.png' \( "${KEPT_PNG[@]}" \) \) \) \
     -size -4194304c -print0 | tar --null -czf "$OUT/$tmp-check.tar.gz" -T - 2>/dev/null) \
     && mv -f "$OUT/$tmp-check.tar.gz" "$OUT/gpu-check.tar.gz"
  (cd "$WORK" && find . -type f -name '*.png' ! \( "${KEPT_PNG[@]}" \) -size -4194304c -print0 \
     | tar --null -czf "$OUT/$tmp-pictures.tar.gz" -T - 2>/dev/null) && mv -f "$OUT/$tmp-pictures.tar.gz" "$OUT/gpu-pictures.tar.gz"
  rm -f "$OUT/$tmp.txt" "$OUT/$tmp-check.tar.gz" "$OUT/$tmp-pictures.tar.gz"
  local size; size=$(stat -c %s "$OUT/gpu-check.tar.gz" 2>/dev/null || echo 0)
  [ "$size" -lt 15728640 ] || echo "warning: gpu-check.tar.gz is $size bytes, near the 16 MiB a file may come back" \
    | tee -a "$WORK/summary.txt"
}
# (the background packer: what a part finished comes back even if the call is cut inside it)
rm -f "$WORK/.stop-packing"
( while sleep 30; do [ -e "$WORK/.stop-packing" ] && exit 0; pack; done ) > /dev/null 2>&1 &
PACKER=$!
# at the end, or on a signal: the packer stops after any pack it is in (its temporary files gone)
stop_packer() {
  touch "$WORK/.stop-packing"; kill "$PACKER" 2>/dev/null
  command -v flock >/dev/null && ( flock 9 ) 9>"$WORK/.pack.lock"
}
trap stop_packer EXIT
trap 'exit 143' TERM INT

# install_project DIR: this checkout into DIR with the host's own setuptools (no index, no isolation).
# A setuptools older than 77 (the GPU image's version is not recorded) cannot read pyproject's SPDX
# `license = "MIT"` and `license-files`: then a copy with the older license table is installed instead
# (the same code; only the metadata's licence field is written the old way).
install_project() {
  local pip=(python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --upgrade --target "$1")
  "${pip[@]}" . 2>"$WORK/install.log" && return 0
  local copy; copy=$(mktemp -d)
  cp -r wae_bench regularizers pyproject.toml README.md LICENSE "$copy"/ 2>/dev/null
  sed -i -e 's/^license = "MIT".*/license = { text = "MIT" }/' -e '/^license-files = /d' \
    -e 's/^requires = \["setuptools>=77"\].*/requires = ["setuptools>=61"]/' "$copy/pyproject.toml"
  echo "note: this setuptools cannot build the checkout as it is ($(grep -m1 -i "error" "$WORK/install.log" | cut -c1-160)); installing it" \
       "with the pre-SPDX license table" | tee -a "$WORK/summary.txt"
  (cd "$copy" && "${pip[@]}" .) && rm -rf "$copy"
}
SITE=${SITE:-/tmp/site}   # (a dry run on a shared machine: give it a folder of its own)
if [ -d .whl ]; then   # the GPU machine: carried wheels, then this project (its entry points) into $SITE
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit 1
  install_project "$SITE" || exit 1
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
fi
# every part needs the package and its entry points (the built-in regularizers) for python3
python3 -c "from importlib.metadata import entry_points as e; import wae_bench
[x for x in e(group='wae_bench.regularizers') if x.name == 'moca'][0].load()" 2>/dev/null || {
  echo "error: python3 cannot load wae_bench with its entry points: prepare .whl as benchmarks/GPU.md says" \
       "(the GPU call installs it then), or pip install -e . into this python3 for a dry run" >&2; exit 1; }
# the carried wheels go in without their dependencies: each must import (torch-fidelity needs tqdm, scipy,
# pillow), else every cell would train and then fail at its scoring
why=$(python3 -c "import torch_fidelity, geomloss" 2>&1 | tail -1)
[ -z "$why" ] || {
  echo "error: the carried wheels do not import here ($why): carry the missing package's wheel in .whl too" \
    | tee -a "$WORK/summary.txt" >&2; exit 1; }
DATA=${DATA:-/tmp/wae-data}
W=${W:-/tmp/wae-inception.pth}
# (unpacked only where $DATA holds no copy yet: neither train/ nor the *train*.zip archives a
# dry run's DATA=../shared/data has, which must not receive 60,000 JPEGs)
if [ -f .device-data/cifar10-jpeg.tar.xz ] && [ ! -d "$DATA/train" ] && ! ls "$DATA"/*train*.zip >/dev/null 2>&1; then
  mkdir -p "$DATA" && tar -xJf .device-data/cifar10-jpeg.tar.xz -C "$DATA"
fi
FP16=$(ls .device-data/inception-2015-12-05-fp16.pth.xz .device-data/inception-2015-12-05-fp16.pth 2>/dev/null | head -1)
if [ -n "$FP16" ] && [ ! -f "$W" ]; then
  python3 - "$W" "$FP16" <<'PY'
import io, lzma, sys, torch   # expand the compact fp16 copy (as ../shared/tools/expand_inception_fp16.py)
src = sys.argv[2]   # xz-compressed to fit the carry limit (benchmarks/GPU.md), or as ../shared has it
raw = lzma.open(src).read() if src.endswith(".xz") else open(src, "rb").read()
blob = torch.load(io.BytesIO(raw), map_location="cpu")
sd = {k: v.float() for k, v in blob["fp16"].items()}
sd.update({k: torch.full(shape, value) for k, (shape, value) in blob["const"].items()})
sd.update(blob["other"])
torch.save(sd, sys.argv[1])
PY
fi
export WAE_BENCH_CACHE=$WORK/cache WAE_BENCH_OFFLINE=1 PYTHONUNBUFFERED=1
# the commit every run's config.json records (the package in /tmp/site is a copy, not a checkout);
# -dirty: uncommitted changes in the code paths only (wae_bench.run.directory.CODE_PATHS, docs/resume.md)
WAE_BENCH_SOURCE_REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- wae_bench regularizers pyproject.toml 2>/dev/null || echo -dirty)
export WAE_BENCH_SOURCE_REV
log "setup done; git $WAE_BENCH_SOURCE_REV"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$WORK/summary.txt"
python3 -c "import torch, torch_fidelity; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'torch-fidelity', torch_fidelity.__version__)" 2>&1 | tee -a "$WORK/summary.txt"


# bench_cells TIMEOUT SPEC CELLS EPOCHS LOG [more --set ...]: train and score
# cells of SPEC on the CIFAR-10 JPEG copy with the fast GPU settings (captured
# bf16 channels-last step; few checkpoints: one takes ~1 s, a step 2.5 ms; a
# metrics line every 500 steps, since every committed byte travels with later
# calls).  The exact command goes into the log and the summary.
bench_cells() {
  local limit=$1 spec=$2 cells=$3 epochs=$4 logf=$5; shift 5
  bench_cmd "$spec" "$cells" "$epochs" "$@"
  echo "command: timeout $limit ${BENCH[*]}" | tee -a "$WORK/summary.txt" > "$logf"
  timeout --foreground -k 45 "$limit" "${BENCH[@]}" >> "$logf" 2>&1
  echo "exit $?" >> "$logf"
}
# bench_cmd SPEC CELLS EPOCHS [more options]: the bench command of bench_cells, in the array BENCH
bench_cmd() {
  local spec=$1 cells=$2 epochs=$3; shift 3
  BENCH=(python3 -m wae_bench bench "$spec" --only "$cells"
    --out "$WORK/$(basename "$spec" .toml)" --data-root "$DATA" --fid-weights "$W" --quiet
    --set train.epochs="$epochs" --set train.data_variant=cifar10-jpeg-q75 --set train.step_mode=graph
    --set train.precision=bf16 --set train.channels_last=true --set train.ckpt_every=20000
    --set train.log_every=500 "$@")
}
# cells_report LOG: a bench log's lines without its tables, and every cell's figures, into the summary
cells_report() {
  grep -v "│\|┃\|━\|─" "$1" | grep -v "^\s*$" | tail -30 | tee -a "$WORK/summary.txt"
  python3 benchmarks/cells_summary.py "$FOLDER" --json "$WORK/cells-summary.json" 2>&1 | tee -a "$WORK/summary.txt"
  pack
}


# speed ARCH TAG REGS CAP [more speed.py options]: benchmarks/speed.py at batch
# 64 (image size $SIZE, queue $K; $STEPS steps x $REP rounds after $WARM warm-up
# steps; later options win), its table appended to the summary.
speed() {
  local arch=$1 tag=$2 regs=$3 limit=$4; shift 4
  local t0=$SECONDS
  timeout --foreground -k 20 "$(cap "$limit" 20)" python3 benchmarks/speed.py --arch "$arch" --image-size "${SIZE:-32}" --batch-size 64 \
    --K "${K:-30000}" --regs "$regs" --steps "$STEPS" --repeats "$REP" --warmup "$WARM" \
    --out "$WORK/speed-$arch-$tag.json" "$@" > "$WORK/speed-$arch-$tag.log" 2>&1
  echo "exit $? after $((SECONDS - t0)) s" >> "$WORK/speed-$arch-$tag.log"
  grep -v "^USDT\|^ERROR:.*DeviceProperties\|^\[W\|^W[0-9]" "$WORK/speed-$arch-$tag.log" | tail -14 \
    | tee -a "$WORK/summary.txt"
  pack
}


# at_once SCRIPT ARCH TAG CAP [more options]: N = $NS MoCA cells at once,
# batch 64, image size $SIZE, queue $K, bf16, captured step, $TSTEPS timed
# steps, by benchmarks/SCRIPT.py (throughput: N runs on N streams, as
# bench --concurrent; stacked: N cells as one vmapped model), its table
# appended to the summary.
at_once() {
  local script=$1 arch=$2 tag=$3 limit=$4; shift 4
  local t0=$SECONDS name="$script-$arch-$tag"
  timeout --foreground -k 20 "$(cap "$limit" 20)" python3 "benchmarks/$script.py" --arch "$arch" --image-size "${SIZE:-32}" \
    --batch-size 64 --K "${K:-30000}" --concurrency "$NS" --steps "$TSTEPS" --warmup "$WARM" \
    --precision bf16 --step-mode graph --out "$WORK/$name.json" "$@" > "$WORK/$name.log" 2>&1
  echo "exit $? after $((SECONDS - t0)) s" >> "$WORK/$name.log"
  grep -v "^USDT\|^ERROR:.*DeviceProperties\|^\[W\|^W[0-9]" "$WORK/$name.log" | tail -8 | tee -a "$WORK/summary.txt"
  pack
}
