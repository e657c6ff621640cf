"""The real datasets in the layouts a researcher has them in: a root one
level off, torchvision's archive left packed or partly extracted, a
``--download`` with no network, CelebA a level down or its zip beside a
folder extracted in part.  Each is one line naming the folder to pass or
the files to restore (docs/datasets.md).  Synthetic files, few images."""
from __future__ import annotations

import os
import urllib.error

import numpy as np
import pytest
from PIL import Image

from wae_bench.data import load_split
from wae_bench.data.builtin import CELEBA, CIFAR10
from wae_bench.errors import WaeError

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def batches_folder(root, names=(*BATCHES, "batches.meta")):
    """``root/cifar-10-batches-py`` holding ``names`` (junk bytes: only the error paths read them)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(b"junk")
    return folder


def error(root, dataset=CIFAR10, split="train", **kw) -> str:
    with pytest.raises(WaeError) as e:
        load_split(dataset, str(root), split, dataset.image_size, **kw)
    text = str(e.value)
    assert "\n" not in text
    return text


def test_a_cifar10_root_one_level_off_names_the_folder_to_pass(tmp_path):
    """A root one level too high (the data in a sub-folder) and torchvision's
    folder passed itself: the message names the folder to pass; the dry
    run's scan says the same."""
    batches_folder(tmp_path / "data" / "cifar10")
    high = tmp_path / "data"
    assert error(high).endswith(f"the data is a level down, in {str(high / 'cifar10')!r}: pass it as --data-root")
    with pytest.raises(WaeError, match="the data is a level down"):
        CIFAR10.scan(high)
    low = high / "cifar10" / "cifar-10-batches-py"
    assert error(low).endswith(f"this is torchvision's cifar-10-batches-py folder itself: pass its parent "
                               f"{str(low.parent)!r} as --data-root")
    zips = tmp_path / "mine" / "jpeg"                    # the JPEG zips a level down
    zips.mkdir(parents=True)
    for split in ("train", "test"):
        (zips / f"cifar10-jpeg-{split}.zip").write_bytes(b"")
    (tmp_path / "mine" / "notes").mkdir()
    assert f"the data is a level down, in {str(zips)!r}: pass it" in error(tmp_path / "mine", split="test")


def test_cifar10s_archive_left_packed_is_told_to_be_extracted(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not extracted")
    text = error(tmp_path)
    assert "cifar-10-python.tar.gz there is not extracted: extract it there (tar -xzf " in text
    assert "or pass --download, which extracts it without the network" in text


def test_partly_extracted_or_damaged_batches_name_the_files(tmp_path):
    """torchvision's "Dataset not found or corrupted" said only 'not found'
    and to pass the folder that holds it, of a folder that holds it in part."""
    batches_folder(tmp_path / "part", ("data_batch_1", "data_batch_2", "batches.meta"))
    text = error(tmp_path / "part")
    assert (f"CIFAR10 not found in {str(tmp_path / 'part')!r}: {str(tmp_path / 'part' / 'cifar-10-batches-py')!r} "
            f"lacks data_batch_3, data_batch_4, data_batch_5, test_batch (an extraction cut short?); restore them "
            f"(extract cifar-10-python.tar.gz there again)") in text
    junk = batches_folder(tmp_path / "junk")
    assert (f"data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch, batches.meta in "
            f"{str(junk)!r} fail torchvision's md5 check") in error(tmp_path / "junk")


def test_an_unreadable_batch_without_download_is_not_called_a_failed_download(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)   # (a file vanishing after the check)
    batches_folder(tmp_path, ("batches.meta",))
    (tmp_path / "cifar-10-batches-py" / "batches.meta").unlink()
    text = error(tmp_path)
    assert text.startswith(f"cannot read CIFAR10 in {str(tmp_path)!r} (") and "download" not in text


def test_download_offline_names_the_archive_to_fetch_by_hand(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    def offline(url, download_root, *a, **k):
        os.makedirs(download_root, exist_ok=True)
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    text = error(tmp_path / "new", download=True)
    assert text.startswith(f"could not download CIFAR10 to {str(tmp_path / 'new')!r} (<urlopen error no route to "
                           f"host>); download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz elsewhere and "
                           f"put it in {str(tmp_path / 'new')!r} (--download then extracts it without the network)")
    assert not (tmp_path / "new").exists()
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "cifar-10-python.tar.gz").write_bytes(b"half a download")
    assert ("the cifar-10-python.tar.gz there fails torchvision's md5 check (a download cut short?), so it was "
            "fetched again: replace it") in error(tmp_path / "cut", download=True)


def aligned(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        Image.fromarray(np.full((218, 178, 3), 10 * i, np.uint8)).save(folder / f"{i:06d}.jpg")


def test_celeba_one_level_too_high_is_refused_not_split_by_file_order(tmp_path):
    """``DATA/`` holding ``DATA/mine/celeba/img_align_celeba`` was read as a
    folder of images, split by file order, its partition file left out as a
    stray file: now the folder to pass is named."""
    celeba = tmp_path / "mine" / "celeba"
    aligned(celeba / "img_align_celeba", 4)
    (celeba / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n")
    text = error(tmp_path, CELEBA)
    assert text.startswith(f"CelebA's img_align_celeba is a level below {str(tmp_path)!r}, in "
                           f"{str(tmp_path / 'mine')!r}: pass it as --data-root")
    with pytest.raises(WaeError, match="is a level below"):
        CELEBA.scan(tmp_path)
    got = load_split(CELEBA, str(tmp_path / "mine"), "train", 64)
    assert len(got.images) == 3 and got.variant == "celeba-140crop-trainval"


def test_celeba_folder_extracted_in_part_beside_its_zip_is_told_to_unzip_it(tmp_path):
    import zipfile

    celeba = tmp_path / "celeba"
    aligned(celeba / "img_align_celeba", 4)
    (celeba / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n")
    with zipfile.ZipFile(celeba / "img_align_celeba.zip", "w") as zf:
        for p in sorted((celeba / "img_align_celeba").iterdir()):
            zf.write(p, f"img_align_celeba/{p.name}")
    (celeba / "img_align_celeba" / "000004.jpg").unlink()
    assert ("(train: 0 of 3, test: 1 of 1; first: 000004.jpg); the img_align_celeba.zip beside it holds them: unzip "
            "it again, or move the folder aside to read the zip") in error(tmp_path, CELEBA)
