"""Image files from a folder or an uncompressed/deflated zip archive
(``<class>/<file>.jpg|png``, the layout StyleGAN2-ADA uses).

Archives are read in place, member by member, never extracted: a member name
cannot write outside the data folder (no path traversal).  A folder is walked
through its links to folders (each folder once) and a link to nothing is
refused; a read says in ``note:`` lines what it did to the images that the
loader's output no longer shows (:func:`_read_notes`): files left out by
their extension, a grayscale set read as RGB, alpha channels dropped, EXIF
orientations not applied, non-square images stretched.
"""
from __future__ import annotations

import io
import os
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from wae_bench.data.spec import note_once
from wae_bench.errors import WaeError, doc_ref
from wae_bench.progress import phase

EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# PIL modes read as 8-bit RGB or L as they are ("1": bilevel 0/255; 16-bit and float modes are refused)
_MODES = {"RGB", "L", "RGBA", "P", "LA", "PA", "1", "CMYK", "YCbCr"}
_GRAY, _ALPHA = {"L", "LA", "1"}, {"RGBA", "LA", "PA"}
_ORIENTATION = 0x0112   # the EXIF tag of a camera's rotation (1: as stored)


def _is_hidden(name: str) -> bool:
    """``.DS_Store``, macOS's ``._x.png`` resource forks and its ``__MACOSX/`` folder in a zip."""
    return name.split("/")[-1].startswith(".") or name.startswith("__MACOSX/")


def _is_image(name: str) -> bool:
    return name.lower().endswith(EXTS) and not _is_hidden(name)


def _files_under(folder: Path) -> list[Path]:
    """Every file under ``folder``, through links to folders (each folder
    once, so a link back up is no loop); a link to nothing named as an
    image, or a folder that cannot be listed, is a :class:`WaeError`."""
    def unlistable(e: OSError):
        raise WaeError(f"cannot list {e.filename!r} ({e.strerror or e}) under {str(folder)!r}; check its "
                       f"permissions, or move it out of the data folder")

    found, seen = [], set()
    for top, dirs, names in os.walk(folder, onerror=unlistable, followlinks=True):
        st = os.stat(top)
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        for name in names:
            p = Path(top) / name
            if p.is_file():
                found.append(p)
            elif p.is_symlink() and _is_image(name):
                raise WaeError(f"image {str(p.relative_to(folder))!r} in {str(folder)!r} is a link to "
                               f"{os.readlink(p)!r}, which does not exist; restore its target or remove the link")
    return sorted(found)


def _image_files(folder: Path) -> list[Path]:
    return [p for p in _files_under(folder) if _is_image(p.name)]


def _listing(path: Path) -> tuple[list[tuple[str, Callable[[], bytes], int]], list[str]]:
    """The images of a folder or zip sorted by name, each (name, a reader of
    its bytes, its size in bytes), and the names of the other files (not
    hidden: left out by their extension)."""
    if path.is_dir():
        files = _files_under(path)
        images = [(str(p.relative_to(path)), p.read_bytes, p.stat().st_size) for p in files if _is_image(p.name)]
        return images, [str(p.relative_to(path)) for p in files if not _is_image(p.name) and not _is_hidden(p.name)]
    try:
        zf = zipfile.ZipFile(path)
        infos = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename)
    except (zipfile.BadZipFile, OSError) as e:
        raise WaeError(f"{str(path)!r} is not a readable zip archive ({e}); re-download or re-pack it") from None
    images = [(i.filename, (lambda n=i.filename: zf.read(n)), i.file_size) for i in infos if _is_image(i.filename)]
    return images, [i.filename for i in infos if not _is_image(i.filename) and not _is_hidden(i.filename)]


def members(path: Path) -> list[tuple[str, Callable[[], bytes]]]:
    """The images of a folder or zip, sorted by name: (name, a reader of its bytes)."""
    return [(name, read) for name, read, _ in _listing(path)[0]]


DECODE_NOTICE = 5000   # a read of this many images or more says so first (60,000 CIFAR-10 JPEGs: ~20 s on 2 cores)
# ... and of this many bytes (photos: 400 JPEGs of 2000x1500, 195 MB, took 10 s on 2 cores)
DECODE_NOTICE_BYTES = 64 << 20


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation of ``im`` (1: as stored; a damaged EXIF block counts as 1: the pixels decoded)."""
    try:
        return int(im.getexif().get(_ORIENTATION, 1))
    except (OSError, SyntaxError, ValueError, TypeError):
        return 1


def _decode(name: str, raw: bytes, channels: int, size: int | None, crop: int | None,
            where: Path, source: tuple[int, int] | None = None, tally: Counter | None = None) -> np.ndarray:
    """One image as uint8 H×W×C; ``tally`` counts what the conversion hides
    (``gray``, ``alpha``, ``colour`` for a 1-channel read, ``stretched``, ``turned``: an EXIF
    orientation left unapplied), for :func:`_read_notes`."""
    try:
        im = Image.open(io.BytesIO(raw))
        im.load()
    except UnidentifiedImageError:
        raise WaeError(f"cannot read image {name!r} in {str(where)!r} (not an image PIL recognises); remove or "
                       f"replace the file") from None
    except Image.DecompressionBombError as e:
        raise WaeError(f"image {name!r} in {str(where)!r} is too large to decode safely ({e}); remove it or "
                       f"resize it") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise WaeError(f"cannot read image {name!r} in {str(where)!r} ({e}); remove or replace the file") from None
    if im.mode not in _MODES:
        raise WaeError(f"image {name!r} in {str(where)!r} has mode {im.mode}, which cannot be read as "
                       f"{'RGB' if channels == 3 else 'grayscale'}; convert it to 8-bit RGB")
    if im.mode == "P" and "transparency" in im.info:   # (straight to RGB, PIL warns in two lines of its own)
        im = im.convert("RGBA")
    if tally is not None:
        tally.update(k for k, hit in (("gray", im.mode in _GRAY), ("alpha", im.mode in _ALPHA),
                                      ("colour", channels == 1 and im.mode not in _GRAY),
                                      ("stretched", size is not None and crop is None and im.size[0] != im.size[1]),
                                      ("turned", _orientation(im) != 1))
                     if hit)
    im = im.convert("RGB" if channels == 3 else "L")
    if source is not None and im.size != source and min(im.size) >= (crop or 0):
        # the crop is defined on that size: another cuts another region (smaller than the crop: refused below)
        raise WaeError(f"image {name!r} in {str(where)!r} is {im.size[0]}x{im.size[1]}, not the {source[0]}x"
                       f"{source[1]} of aligned CelebA, so the {crop}x{crop} centre crop would cut a different "
                       f"region of it; pass the aligned images (img_align_celeba), or put yours in train/ and "
                       f"test/ folders under --data-root (variant celeba-files: the same crop of any size)")
    if crop is not None:
        w, h = im.size
        if min(w, h) < crop:   # PIL would pad the crop with black
            raise WaeError(f"image {name!r} in {str(where)!r} is {w}x{h}, smaller than the {crop}x{crop} centre crop "
                           f"this dataset takes (aligned CelebA images are 178x218); pass the original images, or "
                           f"read these with --dataset folder (which resizes to --set image_size=N)")
        left, top = (w - crop) // 2, (h - crop) // 2
        im = im.crop((left, top, left + crop, top + crop))
    if size is not None and im.size != (size, size):
        im = im.resize((size, size), Image.BICUBIC)      # (docs/datasets.md states the filter: FID depends on it)
    a = np.asarray(im, dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a


# Decoded datasets of this process, by the files' fingerprint: a bench (many
# cells in one process) and a run followed by its evaluation decode each
# split once (60,000 CIFAR-10 JPEGs take ~11 s to decode on a GPU host,
# longer than the evaluation's FIDs).  Bounded by CACHE_BYTES.
_CACHE: dict[tuple, torch.Tensor] = {}
CACHE_BYTES = 4 << 30


def _fingerprint(path: Path, *options) -> tuple:
    """What the decoded tensor depends on: the options and every image
    file's name, size and modification time (a zip: the archive's)."""
    path = path.resolve()
    if path.is_dir():
        files = tuple((str(p.relative_to(path)), st.st_size, st.st_mtime_ns)
                      for p in _image_files(path) for st in (p.stat(),))
    else:
        st = path.stat()
        files = (st.st_size, st.st_mtime_ns)
    return (str(path), options, files)


def read_images(path: Path, channels: int = 3, resize_to: int | None = None, crop: int | None = None,
                expect: int | None = None, source: tuple[int, int] | None = None) -> torch.Tensor:
    """All images under ``path`` (folder or zip), sorted by name, as uint8 N×C×H×W.

    ``resize_to``: resize every image (after an optional centre ``crop``);
    otherwise every image must be ``expect``×``expect`` (or share one size).
    ``source``: the (width, height) every image must have as stored (CelebA's
    aligned 178×218, on which its crop is defined).
    A second read of unchanged files in the same process is a copy of the
    first (see ``_CACHE``).
    """
    try:
        key = _fingerprint(Path(path), channels, resize_to, crop, expect, source)
    except (OSError, WaeError):
        key = None   # (unreadable: _read_images says why)
    if key is not None and key in _CACHE:
        return _CACHE[key].clone()
    x = _read_images(Path(path), channels, resize_to, crop, expect, source)
    if key is not None and x.numel() <= CACHE_BYTES:
        while _CACHE and sum(v.numel() for v in _CACHE.values()) + x.numel() > CACHE_BYTES:
            _CACHE.pop(next(iter(_CACHE)))   # the oldest first
        _CACHE[key] = x.clone()
    return x


def _read_images(path: Path, channels: int, resize_to: int | None, crop: int | None,
                 expect: int | None, source: tuple[int, int] | None = None) -> torch.Tensor:
    arrays, first, tally = [], None, Counter()
    try:
        listed, others = _listing(path)
        if len(listed) >= DECODE_NOTICE or sum(n for _, _, n in listed) >= DECODE_NOTICE_BYTES:
            phase(f"decoding {len(listed):,} images from {path.name}")
        for name, read, _ in listed:
            a = _decode(name, read(), channels, resize_to, crop, path, source, tally)
            if resize_to is None:
                want = (expect, expect) if expect else (first.shape[:2] if first is not None else a.shape[:2])
                if a.shape[:2] != tuple(want):
                    raise WaeError(f"image {name!r} in {str(path)!r} is {a.shape[1]}x{a.shape[0]}, expected "
                                   f"{want[1]}x{want[0]}; resize the images to {want[1]}x{want[0]}, or read them "
                                   f"with --dataset folder (which resizes to --set image_size=N)")
            first = a if first is None else first
            arrays.append(a)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, zlib.error) as e:
        raise WaeError(f"zip archive {str(path)!r} is truncated or corrupt ({e}); re-download or re-pack it") from None
    except OSError as e:
        raise WaeError(f"cannot read {str(path)!r} ({e}); check the file") from None
    if not arrays:
        raise no_images(path)
    for text in _read_notes(path, len(arrays), others, tally, channels, resize_to):
        note_once(text)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _read_notes(path: Path, n: int, others: list[str], tally: Counter, channels: int,
                size: int | None) -> list[str]:
    """What a read of ``n`` images from ``path`` did that its tensor does not
    show: the files it left out by their extension, a wholly grayscale set
    read as RGB (or colour images read as grayscale), alpha channels dropped,
    EXIF orientations not applied, non-square images stretched to a square."""
    where, out = repr(str(path)), []
    if others:
        first = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        out.append(f"{len(others)} file{'s' * (len(others) > 1)} in {where} left out, not being "
                   f"{', '.join(EXTS)} images ({first}); convert any images among them to PNG to use them")
    if channels == 3 and tally["gray"] == n:
        out.append(f"every image in {where} is grayscale; read as RGB (3 equal channels), as this dataset's "
                   f"images are RGB; to train on 1 channel, load them with a dataset plugin of channels=1 "
                   f"({doc_ref('datasets.md', 'Dataset plugins: the contract')})")
    if channels == 1 and tally["colour"]:
        out.append(f"{tally['colour']} of {n} images in {where} are in colour; read as grayscale, as this "
                   f"dataset's images are 1-channel")
    if tally["alpha"]:
        out.append(f"{tally['alpha']} of {n} images in {where} have an alpha channel, dropped: transparent "
                   f"pixels keep the colour stored under them; flatten them onto a background first to choose it")
    if tally["turned"]:
        out.append(f"{tally['turned']} of {n} images in {where} carry an EXIF orientation (a camera's rotation, "
                   f"which viewers apply); read as stored, not turned: to train on them upright, apply it to the "
                   f"files first (PIL: ImageOps.exif_transpose)")
    if tally["stretched"]:
        out.append(f"{tally['stretched']} of {n} images in {where} are not square; stretched to {size}x{size} "
                   f"(the loader crops nothing: crop them first to keep their aspect)")
    return out


def no_images(path: Path) -> WaeError:
    """The error of a folder or zip that holds no image."""
    return WaeError(f"no images ({', '.join(EXTS)}) found in {str(path)!r}; point --data-root at a "
                    f"folder or zip of <class>/<file>.jpg|png")


def find_split(root: Path, split: str) -> Path | None:
    """``root/<split>/``, else ``root/<split>.zip``, else the one ``root/*<split>*.zip``; None if none.

    Ambiguity is refused rather than resolved silently: both ``<split>/`` and
    ``<split>.zip``, or no exact name and more than one ``*<split>*.zip``.
    """
    folder, archive = root / split, root / f"{split}.zip"
    if folder.exists() and archive.exists():
        raise WaeError(f"both '{split}/' and '{split}.zip' in {str(root)!r} could be the {split} split; "
                       f"move one of them aside")
    for cand in (folder, archive):
        if cand.exists():
            return cand
    zips = sorted(root.glob(f"*{split}*.zip"))
    if len(zips) > 1:
        raise WaeError(f"{len(zips)} candidates for the {split} split in {str(root)!r} "
                       f"({', '.join(z.name for z in zips)}); keep one, or rename it {split}.zip")
    return zips[0] if zips else None
