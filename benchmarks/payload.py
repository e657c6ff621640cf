"""What the GPU call carries, against the device tool's 64 MiB: the working
tree as it travels (tracked files and untracked files git does not ignore)
plus the carried folders ``.whl`` and ``.device-data`` (benchmarks/GPU.md).

    python benchmarks/payload.py              # measures the prepared checkout; exit 1 if over
    python benchmarks/payload.py --largest 10 # and the tree's 10 largest folders

Committed results count against the same 64 MiB as the CIFAR-10 copy and the
FID weights, so ``tests/test_benchmarks.py`` checks that the tracked files
leave room for ``CARRIED``: the carried files as measured by this script on
2026-12-01 (the data of ``../shared/data/device``, the FID weights
xz-compressed, and the torch-fidelity and geomloss wheels).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 64 << 20
CARRIED_FOLDERS = (".whl", ".device-data")
# measured by `python benchmarks/payload.py` in a prepared checkout, 2026-12-01
CARRIED = {".device-data/cifar10-jpeg.tar.xz": 18_443_812,
           ".device-data/inception-2015-12-05-fp16.pth.xz": 39_370_164,
           ".whl (torch-fidelity, geomloss)": 168_556}


def tree_files(root: Path = ROOT) -> dict[str, int]:
    """Bytes of each file that travels with the working tree."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         capture_output=True, check=True).stdout
    return {p: (root / p).stat().st_size for p in out.decode().split("\0") if p and (root / p).is_file()}


def tree_bytes(root: Path = ROOT) -> int:
    """Bytes of the files that travel with the working tree."""
    return sum(tree_files(root).values())


def carried_bytes(root: Path = ROOT) -> dict[str, int]:
    """Bytes of each file in the carried folders that are present."""
    return {str(p.relative_to(root)): p.stat().st_size for folder in CARRIED_FOLDERS
            for p in sorted((root / folder).rglob("*")) if p.is_file()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--largest", type=int, default=0, metavar="N", help="also list the N largest folders of the tree")
    a = ap.parse_args(argv)
    files = tree_files()
    tree, carried = sum(files.values()), carried_bytes()
    if a.largest:
        folders: dict[str, int] = {}
        for p, size in files.items():
            for parent in list(Path(p).parents)[:-1]:
                folders[str(parent)] = folders.get(str(parent), 0) + size
        for name, size in sorted(folders.items(), key=lambda kv: -kv[1])[:a.largest]:
            print(f"{size:>12,}  {name}/")
    for name, size in carried.items():
        print(f"{size:>12,}  {name}")
    print(f"{tree:>12,}  working tree")
    total = tree + sum(carried.values())
    print(f"{total:>12,}  in all, of {LIMIT:,} ({(LIMIT - total) / 2**20:+.2f} MiB to spare)")
    if not carried:
        measured = tree + sum(CARRIED.values())
        print(f"{measured:>12,}  with the carried files as measured (CARRIED): "
              f"{(LIMIT - measured) / 2**20:+.2f} MiB to spare")
        print("(no .whl or .device-data here: prepare them as benchmarks/GPU.md says, then run this again)")
    if total > LIMIT:
        print("over the device tool's limit: the call would not start; shrink what is committed "
              "(benchmarks/shrink_pngs.py) or carried", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
