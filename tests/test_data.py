"""Datasets: folders and zips of images read in place, the embedded default,
the real CIFAR-10 copy, and the seeded batcher."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from wae_bench.data import Batcher, load_split
from wae_bench.data.builtin import CELEBA, CIFAR10, DIGITS, MNIST
from wae_bench.data.files import read_images
from wae_bench.errors import WaeError


def write_pngs(root, n=6, size=8, mode="RGB", classes=("a", "b")):
    rng = np.random.default_rng(0)
    arrays = {}
    for i in range(n):
        c = classes[i % len(classes)]
        (root / c).mkdir(parents=True, exist_ok=True)
        shape = (size, size, 3) if mode == "RGB" else (size, size)
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(a, mode=mode).save(root / c / f"{i:03d}.png")
        arrays[f"{c}/{i:03d}.png"] = a
    return arrays


def test_folder_and_zip_give_the_same_pixels(tmp_path):
    arrays = write_pngs(tmp_path / "imgs")
    x = read_images(tmp_path / "imgs")
    assert x.shape == (6, 3, 8, 8) and x.dtype == torch.uint8
    names = sorted(arrays)
    assert np.array_equal(x[0].permute(1, 2, 0).numpy(), arrays[names[0]])
    with zipfile.ZipFile(tmp_path / "imgs.zip", "w", zipfile.ZIP_STORED) as zf:
        for n in names:
            zf.write(tmp_path / "imgs" / n, n)
    assert torch.equal(read_images(tmp_path / "imgs.zip"), x)


def test_grayscale_converted_and_wrong_size_refused(tmp_path):
    write_pngs(tmp_path / "g", mode="L")
    assert read_images(tmp_path / "g").shape == (6, 3, 8, 8)
    write_pngs(tmp_path / "mixed", n=2)
    Image.new("RGB", (9, 9)).save(tmp_path / "mixed" / "a" / "zzz.png")
    with pytest.raises(WaeError, match="is 9x9, expected 8x8"):
        read_images(tmp_path / "mixed")
    assert read_images(tmp_path / "mixed", resize_to=4).shape == (3, 3, 4, 4)


def test_empty_truncated_and_unreadable(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(WaeError, match="no images"):
        read_images(tmp_path / "empty")
    write_pngs(tmp_path / "imgs")
    with zipfile.ZipFile(tmp_path / "t.zip", "w") as zf:
        for p in sorted((tmp_path / "imgs").rglob("*.png")):
            zf.write(p, p.relative_to(tmp_path / "imgs"))
    raw = (tmp_path / "t.zip").read_bytes()
    (tmp_path / "t.zip").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(WaeError, match="zip"):
        read_images(tmp_path / "t.zip")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(WaeError, match="cannot read image"):
        read_images(tmp_path / "bad")


def test_embedded_digits_needs_no_root():
    tr, te = load_split(DIGITS, None, "train", 16), load_split(DIGITS, None, "test", 16)
    assert tr.images.shape == (1500, 1, 16, 16) and te.images.shape == (297, 1, 16, 16)
    assert tr.images.max() > 200


def test_missing_root_and_split(tmp_path):
    with pytest.raises(WaeError, match="needs --data-root"):
        load_split(CIFAR10, None, "train", 32)
    with pytest.raises(WaeError, match="does not exist"):
        load_split(CIFAR10, str(tmp_path / "nope"), "train", 32)
    with pytest.raises(WaeError, match="no cifar10 train split"):
        load_split(CIFAR10, str(tmp_path), "train", 32)


def test_cifar10_in_torchvisions_layout_keeps_each_pixels_channel(tmp_path, monkeypatch):
    """``cifar-10-batches-py`` read through torchvision: its pickled rows
    (3×32×32, channel-major) come out as the same CHW images.  The files are
    synthetic, so torchvision's md5 check is switched off."""
    import pickle

    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows[name] = rng.integers(0, 256, (2, 3 * 32 * 32), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rows[name], "labels": [0, 1]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)
    train, test = (load_split(CIFAR10, str(tmp_path), s, 32) for s in ("train", "test"))
    want = np.concatenate([rows[f"data_batch_{i}"] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    assert train.variant == "cifar10" and torch.equal(train.images, torch.from_numpy(want))
    assert torch.equal(test.images, torch.from_numpy(rows["test_batch"].reshape(-1, 3, 32, 32)))


def test_mnist_in_torchvisions_layout_is_padded_to_32(tmp_path):
    """``MNIST/raw`` idx files read through torchvision, zero-padded 28 -> 32."""
    import struct

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    imgs = np.random.default_rng(1).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    for prefix in ("train", "t10k"):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, 3, 28, 28) + imgs.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, 3) + bytes([0, 1, 2]))
    data = load_split(MNIST, str(tmp_path), "train", 32)
    assert data.variant == "mnist" and data.images.shape == (3, 1, 32, 32)
    assert torch.equal(data.images[:, 0, 2:30, 2:30], torch.from_numpy(imgs))
    assert data.images[:, :, :2].sum() == 0 and data.images[:, :, :, 30:].sum() == 0
    scan = MNIST.scan(tmp_path)                          # (bench --dry-run: the idx headers' counts, no decoding)
    assert (scan.sizes, scan.variant) == ({"train": 3, "test": 3}, "mnist")
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"not idx")
    with pytest.raises(WaeError, match="t10k-images-idx3-ubyte' is not an idx image file; restore"):
        MNIST.scan(tmp_path)


def test_torchvision_download_offline_and_a_corrupt_folder_are_one_line_errors(tmp_path, monkeypatch):
    """``--download`` with no network, and a ``cifar-10-batches-py`` folder
    that torchvision rejects: one line each, naming the fix."""
    import os
    import urllib.error

    import torchvision.datasets.cifar as tv_cifar

    def offline(url, download_root, *a, **k):     # as torchvision's: the folder first, then the fetch
        os.makedirs(download_root, exist_ok=True)
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    with pytest.raises(WaeError) as e:
        load_split(CIFAR10, str(tmp_path / "dl" / "cifar"), "train", 32, download=True)
    assert "could not download CIFAR10" in str(e.value) and "--data-root" in str(e.value)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "dl").exists()               # the folders it made are not left behind
    import torchvision.datasets.mnist as tv_mnist

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    (tmp_path / "m").mkdir()
    with pytest.raises(WaeError, match="MNIST not found in"):
        load_split(MNIST, str(tmp_path / "m"), "train", 32, download=True)
    assert list((tmp_path / "m").iterdir()) == []       # MNIST/raw, which torchvision made inside, removed too
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("a user's file")
    with pytest.raises(WaeError, match="could not download CIFAR10"):
        load_split(CIFAR10, str(tmp_path / "mine"), "train", 32, download=True)
    assert (tmp_path / "mine" / "notes.txt").is_file()  # a folder that was there stays, with its files
    (tmp_path / "bad" / "cifar-10-batches-py").mkdir(parents=True)
    (tmp_path / "bad" / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(WaeError) as e:
        load_split(CIFAR10, str(tmp_path / "bad"), "train", 32)
    assert "CIFAR10 not found in" in str(e.value) and "--data-root" in str(e.value)
    assert "\n" not in str(e.value)


def test_celeba_folder_is_centre_cropped_to_64(tmp_path):
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    for i in range(10):
        a = np.zeros((218, 178, 3), np.uint8)
        a[109 - 70:109 + 70, 89 - 70:89 + 70] = 200       # the 140x140 centre is bright
        Image.fromarray(a).save(folder / f"{i:06d}.jpg")
    tr = load_split(CELEBA, str(tmp_path), "train", 64)
    te = load_split(CELEBA, str(tmp_path), "test", 64)
    assert tr.images.shape == (9, 3, 64, 64) and te.images.shape == (1, 3, 64, 64)   # file order: 90% / 10%
    assert tr.images.float().mean() > 190      # only the bright centre survived the crop


def celeba_images(folder, n=10):
    """``n`` aligned-CelebA-sized images ``000001.jpg``...; image i is uniformly 20 + 20·i."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((218, 178, 3), 20 + 20 * i, np.uint8)).save(folder / f"{i + 1:06d}.jpg")


PARTITION = [0, 0, 0, 0, 0, 1, 2, 2, 0, 2]   # of images 1..10: train 1-6 and 9 (0 and 1), test 7, 8 and 10
TRAIN, TEST = (0, 1, 2, 3, 4, 5, 8), (6, 7, 9)


def which(images):
    """The indices (0-based) of the ``celeba_images`` in a loaded split, by brightness."""
    return [round((float(v) - 20) / 20) for v in images.float().mean(dim=(1, 2, 3))]


def partition_text(sep=" ", header="", newline="\n"):
    return header + "".join(f"{i + 1:06d}.jpg{sep}{p}{newline}" for i, p in enumerate(PARTITION))


def check_split(root, variant="celeba-140crop-trainval", train=TRAIN, test=TEST):
    tr, te = (load_split(CELEBA, str(root), s, 16) for s in ("train", "test"))
    assert (tr.variant, te.variant) == (variant, variant)
    assert which(tr.images) == list(train) and which(te.images) == list(test)


def test_celeba_split_follows_the_partition_file_in_each_layout(tmp_path):
    """torchvision's layout (CRLF too), its zip, Kaggle's nested folder with a
    .csv and header, a zip passed itself: the split the file says (train:
    partitions 0 and 1), labelled celeba-140crop-trainval; no file: the file-order
    split, labelled as such."""
    tv = tmp_path / "tv"
    celeba_images(tv / "celeba" / "img_align_celeba")
    (tv / "celeba" / "list_eval_partition.txt").write_bytes(partition_text(newline="\r\n").encode())
    check_split(tv)
    kaggle = tmp_path / "kaggle"
    celeba_images(kaggle / "img_align_celeba" / "img_align_celeba")
    (kaggle / "list_eval_partition.csv").write_text(partition_text(",", "image_id,partition\n"))
    check_split(kaggle)
    zipped = tmp_path / "zipped" / "celeba"
    celeba_images(tmp_path / "imgs")
    zipped.mkdir(parents=True)
    with zipfile.ZipFile(zipped / "img_align_celeba.zip", "w") as zf:
        for f in sorted((tmp_path / "imgs").iterdir()):
            zf.write(f, f"img_align_celeba/{f.name}")
    (zipped / "list_eval_partition.txt").write_text(partition_text())
    check_split(zipped.parent)
    check_split(zipped / "img_align_celeba.zip")                 # the zip itself: the file beside it still counts
    (zipped / "list_eval_partition.txt").unlink()
    check_split(zipped.parent, "celeba-140crop-trainval-fileorder", train=range(9), test=[9])


def test_the_partition_file_is_found_from_every_folder_of_each_layout(tmp_path, capsys):
    """The Google Drive's own layout (CelebA/Img/img_align_celeba with the PNG
    folder beside it, CelebA/Eval/), CelebA/ in capitals, and the image
    folder (or Kaggle's outer one) passed itself: the partition file beside
    or above is found, never a file-order split; the PNG copy is not read."""
    drive = tmp_path / "drive"
    celeba_images(drive / "CelebA" / "Img" / "img_align_celeba")
    png = drive / "CelebA" / "Img" / "img_align_celeba_png"
    png.mkdir()
    for f in sorted((drive / "CelebA" / "Img" / "img_align_celeba").iterdir()):
        Image.open(f).save(png / f"{f.stem}.png")
    (drive / "CelebA" / "Eval").mkdir()
    (drive / "CelebA" / "Eval" / "list_eval_partition.txt").write_text(partition_text())
    for root in (drive, drive / "CelebA", drive / "CelebA" / "Img", drive / "CelebA" / "Img" / "img_align_celeba"):
        check_split(root)
    cap = tmp_path / "cap"
    celeba_images(cap / "CelebA" / "img_align_celeba")
    (cap / "CelebA" / "list_eval_partition.txt").write_text(partition_text())
    check_split(cap)
    check_split(cap / "CelebA" / "img_align_celeba")
    kaggle = tmp_path / "kaggle"
    celeba_images(kaggle / "img_align_celeba" / "img_align_celeba")
    (kaggle / "list_eval_partition.csv").write_text(partition_text(",", "image_id,partition\n"))
    check_split(kaggle / "img_align_celeba")
    check_split(kaggle / "img_align_celeba" / "img_align_celeba")
    assert "note:" not in capsys.readouterr().err


def test_a_file_order_split_says_so_once_and_reads_one_folder_only(tmp_path, capsys):
    """Without a partition file: one note naming the variant; images in two
    folders (two copies, or the Drive's JPEG and PNG folders with no Eval/)
    are refused, naming them, never split together by file order."""
    plain = tmp_path / "plain"
    celeba_images(plain)
    check_split(plain, "celeba-140crop-trainval-fileorder", train=range(9), test=[9])
    err = capsys.readouterr().err
    assert err.count("note:") == 1 and "splitting the 10 images by file order (variant celeba-140crop-trainval-fileorder)" \
        in " ".join(err.split()), err
    img = tmp_path / "drive" / "CelebA" / "Img"
    celeba_images(img / "img_align_celeba_png", 2)
    celeba_images(img / "img_celeba", 2)
    with pytest.raises(WaeError) as e:
        load_split(CELEBA, str(img), "train", 16)
    assert str(e.value).startswith(f"2 image folders under {str(img)!r} (img_align_celeba_png, img_celeba); pass "
                                   f"the one to use as --data-root"), str(e.value)
    two = tmp_path / "two"
    celeba_images(two / "celeba" / "img_align_celeba", 2)
    celeba_images(two / "celeba" / "Img" / "img_align_celeba", 2)
    with pytest.raises(WaeError, match=r"2 CelebA image folders under .*\(celeba/img_align_celeba, "
                                       r"celeba/Img/img_align_celeba\); pass the one to use as --data-root"):
        load_split(CELEBA, str(two), "train", 16)
    (two / "CelebA").mkdir()
    with pytest.raises(WaeError, match="'CelebA/' and 'celeba/' in .* could each be CelebA; move one of them aside"):
        load_split(CELEBA, str(two), "train", 16)


@pytest.mark.parametrize("text, needles", [
    ("image_id partition extra\n" + partition_text(), ("line 1 ('image_id partition extra')", "'<file> <0|1|2>'")),
    ("image_id partition\n" + partition_text(), ("line 1 ('image_id partition')",)),    # a .txt has no header
    ("000001.jpg zero\n" + partition_text()[13:], ("line 1 ('000001.jpg zero')",)),
    (partition_text() + "000011.jpg 3\n", ("line 11 ('000011.jpg 3')",)),
    (partition_text().replace(" 2", " 1"), ("puts no image in the test split (2): no line gives 2;",)),
    ("".join(f"{i:06d}.jpg 2\n" for i in range(1, 4)), ("puts no image in the train split (0, 1): no line gives "
                                                        "0 or 1;",)),
    (partition_text() + "000001.jpg 2\n", ("lists 000001.jpg twice (line 1 and line 11); keep one of the two lines",)),
    (partition_text().replace("000010.jpg", "000012.jpg").replace("000003.jpg", "000013.jpg"),
     ("2 of the 10 images that", "lists are not in", "(train: 1 of 7, test: 1 of 3; first: 000013.jpg);",
      "restore them", "or move the partition file aside to split by file order")),
    (partition_text().replace("000004.jpg", "000004.png"),
     ("1 of the 10 images", "first: 000004.png; 000004.jpg is there, under another name);")),
])
def test_a_bad_partition_file_is_one_line_naming_the_file(tmp_path, text, needles):
    celeba_images(tmp_path / "img_align_celeba")
    (tmp_path / "list_eval_partition.txt").write_text(text)
    with pytest.raises(WaeError) as e:
        load_split(CELEBA, str(tmp_path), "test", 16)
    msg = str(e.value)
    assert "list_eval_partition.txt" in msg and "\n" not in msg
    assert all(n in msg for n in needles), msg


def test_images_the_partition_file_does_not_list_are_left_out_with_a_note(tmp_path, capsys):
    celeba_images(tmp_path / "celeba" / "img_align_celeba", 12)          # 000011.jpg, 000012.jpg: not listed
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text(partition_text())
    check_split(tmp_path)
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("note:") == 1 and "2 image(s) in" in err and "does not list (first: 000011.jpg) are in " \
        "neither split" in err, err


def test_aligned_celeba_must_be_178x218_and_celeba_files_take_any_size(tmp_path):
    """The 140 crop is defined on the aligned 178x218: another size (a 2x
    copy, a landscape image) is refused, naming the image; a train/ + test/
    root (celeba-files) crops any size, as before."""
    celeba_images(tmp_path / "c" / "celeba" / "img_align_celeba")
    Image.new("RGB", (356, 436)).save(tmp_path / "c" / "celeba" / "img_align_celeba" / "000008.jpg")
    (tmp_path / "c" / "celeba" / "list_eval_partition.txt").write_text(partition_text())
    with pytest.raises(WaeError) as e:
        load_split(CELEBA, str(tmp_path / "c"), "train", 16)
    assert str(e.value).startswith("image '000008.jpg' in ") and "is 356x436, not the 178x218 of aligned CelebA, " \
        "so the 140x140 centre crop would cut a different region of it; pass the aligned images" in str(e.value)
    for split in ("train", "test"):
        (tmp_path / "f" / split / "x").mkdir(parents=True)
        Image.new("RGB", (300, 150), (50, 50, 50)).save(tmp_path / "f" / split / "x" / "0.jpg")
    data = load_split(CELEBA, str(tmp_path / "f"), "train", 16)
    assert data.variant == "celeba-files" and data.images.shape == (1, 3, 16, 16)
    # smaller than the crop: the crop's refusal (the folder dataset), not advice celeba-files would refuse too
    Image.new("RGB", (64, 64)).save(tmp_path / "c" / "celeba" / "img_align_celeba" / "000008.jpg")
    with pytest.raises(WaeError, match="is 64x64, smaller than the 140x140 centre crop"):
        load_split(CELEBA, str(tmp_path / "c"), "train", 16)


def test_celeba_download_without_gdown_and_offline_are_one_line_errors(tmp_path, monkeypatch):
    """torchvision fetches CelebA with gdown: without it, one line naming
    the package (and the extra); offline, the folders the download made
    (celeba/ in the root too) are removed again."""
    import os

    import torchvision.datasets.celeba as tv_celeba

    def no_gdown(*a, **k):
        raise RuntimeError("To download files from GDrive, 'gdown' is required. You can install it with "
                           "'pip install gdown'.")

    monkeypatch.setattr(tv_celeba, "download_file_from_google_drive", no_gdown)
    with pytest.raises(WaeError, match="^dataset 'celeba' needs --data-root DIR to download it into$"):
        load_split(CELEBA, None, "train", 64, download=True)
    with pytest.raises(WaeError) as e:
        load_split(CELEBA, str(tmp_path / "dl" / "x"), "train", 64, download=True)
    assert str(e.value).startswith("--download of CelebA needs gdown: pip install gdown (or pip install "
                                   "'wae-bench[celeba]')") and "\n" not in str(e.value)

    def offline(file_id, root, *a, **k):       # as gdown: the folder first, then the fetch
        os.makedirs(root, exist_ok=True)
        raise ConnectionError("HTTPSConnectionPool(host='drive.google.com'): no route to host")

    monkeypatch.setattr(tv_celeba, "download_file_from_google_drive", offline)
    with pytest.raises(WaeError, match="could not download CelebA to"):
        load_split(CELEBA, str(tmp_path / "dl" / "x"), "train", 64, download=True)
    assert not (tmp_path / "dl").exists()                     # root/celeba, root and its new parent: all gone


def test_celeba_without_images_says_where_they_are_looked_for(tmp_path):
    (tmp_path / "celeba").mkdir()
    with pytest.raises(WaeError, match="no CelebA images in .*img_align_celeba/ or img_align_celeba.zip"):
        load_split(CELEBA, str(tmp_path), "train", 16)


def test_split_discovery_refuses_ambiguity_and_hints_the_fix(tmp_path):
    from wae_bench.data.builtin import FOLDER

    def error(root, split="train"):
        with pytest.raises(WaeError) as e:
            load_split(FOLDER, str(root), split, 8)
        assert "\n" not in str(e.value)
        return str(e.value)

    write_pngs(tmp_path / "imgs")
    packed = tmp_path / "imgs.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        for f in sorted((tmp_path / "imgs").rglob("*.png")):
            zf.write(f, str(f.relative_to(tmp_path / "imgs")))
    two = tmp_path / "two"
    two.mkdir()
    for name in ("data-train.zip", "data-train-old.zip", "data-test.zip"):
        (two / name).write_bytes(packed.read_bytes())
    assert "2 candidates for the train split in" in error(two)
    assert "(data-train-old.zip, data-train.zip); keep one, or rename it train.zip" in error(two)
    (two / "train.zip").write_bytes(packed.read_bytes())          # the exact name settles it
    assert len(load_split(FOLDER, str(two), "train", 8).images) == 6
    both = tmp_path / "both"
    write_pngs(both / "train")
    write_pngs(both / "test")
    (both / "train.zip").write_bytes(packed.read_bytes())
    assert "both 'train/' and 'train.zip' in" in error(both) and "move one of them aside" in error(both)
    (both / "train.zip").unlink()
    assert f"pass its parent {str(both)!r} as --data-root" in error(both / "train")
    only = tmp_path / "only"
    write_pngs(only / "train")
    assert len(load_split(FOLDER, str(only), "train", 8).images) == 6
    assert "move some of the training images (e.g. 10%) into test/<class>/ beside train/" in error(only, "test")
    (tmp_path / "empty").mkdir()
    assert error(tmp_path / "empty").endswith("of images there; fix --data-root")


def test_real_cifar10_jpeg_copy(shared_data):
    te = load_split(CIFAR10, str(shared_data), "test", 32)
    assert te.images.shape == (10000, 3, 32, 32) and te.variant == "cifar10-files"


def test_batcher_is_seeded_covers_epoch_and_splits_ranks():
    imgs = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 1, 2, 2).contiguous()
    b = Batcher(imgs, 4, seed=3)
    assert b.steps_per_epoch == 10
    seen = torch.cat([b.indices(s) for s in range(10)])
    assert sorted(seen.tolist()) == list(range(40))
    assert torch.equal(Batcher(imgs, 4, seed=3).indices(13), b.indices(13))   # pure function of step
    assert not torch.equal(b.indices(0), b.indices(10))                          # new order each epoch
    ranks = [Batcher(imgs, 2, seed=3, rank=r, world_size=2) for r in range(2)]
    glob = Batcher(imgs, 4, seed=3)
    for s in range(5):
        assert torch.equal(torch.cat([r.indices(s) for r in ranks]), glob.indices(s))
    x = b.batch(0)
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 39 / 255 + 1e-6


def test_a_second_read_of_unchanged_files_is_not_decoded_again(tmp_path, monkeypatch):
    """train then evaluate (or a bench's cells) in one process decode a split
    once; a changed file, or other options, decode again."""
    import os

    from wae_bench.data import files

    arrays = write_pngs(tmp_path / "imgs")
    decoded = []
    real = files._decode
    monkeypatch.setattr(files, "_decode", lambda *a, **k: decoded.append(a[0]) or real(*a, **k))
    x = read_images(tmp_path / "imgs")
    assert len(decoded) == 6
    x.zero_()                                         # the caller's copy is its own
    y = read_images(tmp_path / "imgs")
    assert len(decoded) == 6 and y.flatten().max() > 0
    assert torch.equal(y[0].permute(1, 2, 0), torch.from_numpy(arrays["a/000.png"]))
    read_images(tmp_path / "imgs", resize_to=4)       # other options: decoded
    assert len(decoded) == 12
    a = np.full((8, 8, 3), 7, np.uint8)               # a changed file: decoded again, new pixels
    Image.fromarray(a).save(tmp_path / "imgs" / "a" / "000.png")
    st = os.stat(tmp_path / "imgs" / "a" / "000.png")
    os.utime(tmp_path / "imgs" / "a" / "000.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    z = read_images(tmp_path / "imgs")
    assert len(decoded) == 18 and int(z[0].max()) == 7
