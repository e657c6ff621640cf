"""A user's own image folder, as the datasets walk-through found it: links,
files left out, what a read does to the images that its tensor does not
show (each said in one ``note:`` line), a slow read of a few large images
announced, and the fix for an archive passed as ``--data-root``."""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.test_data import write_pngs
from wae_bench.data import files, load_split
from wae_bench.data.builtin import CIFAR10, FOLDER
from wae_bench.errors import WaeError


def notes(capsys) -> list[str]:
    return [" ".join(line.split()) for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]


def test_a_linked_class_folder_is_read_and_a_link_back_up_is_no_loop(tmp_path):
    write_pngs(tmp_path / "elsewhere", n=4, classes=("cats",))
    write_pngs(tmp_path / "d" / "train", n=4, classes=("dogs",))
    write_pngs(tmp_path / "d" / "test", n=2)
    os.symlink(tmp_path / "elsewhere" / "cats", tmp_path / "d" / "train" / "cats")
    os.symlink("..", tmp_path / "d" / "train" / "dogs" / "up")      # a loop, were every link followed
    assert len(load_split(FOLDER, str(tmp_path / "d"), "train", 8).images) == 8


def test_a_link_to_nothing_is_refused_in_one_line(tmp_path):
    write_pngs(tmp_path / "d" / "train")
    os.symlink(tmp_path / "gone.png", tmp_path / "d" / "train" / "a" / "x.png")
    with pytest.raises(WaeError) as e:
        load_split(FOLDER, str(tmp_path / "d"), "train", 8)
    assert str(e.value) == (f"image 'a/x.png' in {str(tmp_path / 'd' / 'train')!r} is a link to "
                            f"{str(tmp_path / 'gone.png')!r}, which does not exist; restore its target or remove "
                            f"the link")


def test_files_left_out_by_their_extension_are_noted(tmp_path, capsys):
    write_pngs(tmp_path / "d" / "train")
    (tmp_path / "d" / "train" / "a" / "notes.txt").write_text("hi")
    Image.new("RGB", (8, 8)).save(tmp_path / "d" / "train" / "b" / "x.gif")
    (tmp_path / "d" / "train" / ".DS_Store").write_text("")          # hidden: not worth a word
    assert len(load_split(FOLDER, str(tmp_path / "d"), "train", 8).images) == 6
    assert notes(capsys) == [f"note: 2 files in {str(tmp_path / 'd' / 'train')!r} left out, not being .png, .jpg, "
                             f".jpeg, .bmp, .webp images (a/notes.txt, b/x.gif); convert any images among them to "
                             f"PNG to use them"]


def test_a_zips_other_members_are_noted_too(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    with zipfile.ZipFile(tmp_path / "d" / "train.zip", "w") as zf:
        for name, fmt in (("a/0.png", "PNG"), ("a/1.tif", "TIFF")):
            raw = io.BytesIO()
            Image.new("RGB", (8, 8)).save(raw, fmt)
            zf.writestr(name, raw.getvalue())
        zf.writestr("__MACOSX/a/._0.png", b"")
    assert len(load_split(FOLDER, str(tmp_path / "d"), "train", 8).images) == 1
    where = repr(str(tmp_path / "d" / "train.zip"))
    assert [n.split(" left out")[0] for n in notes(capsys)] == [f"note: 1 file in {where}"]


def test_a_grayscale_set_read_as_rgb_says_so(tmp_path, capsys):
    write_pngs(tmp_path / "d" / "train", mode="L")
    x = load_split(FOLDER, str(tmp_path / "d"), "train", 8).images
    assert x.shape[1] == 3 and (x[:, 0] == x[:, 2]).all()
    (line,) = notes(capsys)
    assert line.startswith(f"note: every image in {str(tmp_path / 'd' / 'train')!r} is grayscale; read as RGB "
                           f"(3 equal channels)") and "a dataset plugin of channels=1" in line


def test_colour_images_of_a_1_channel_dataset_say_so(tmp_path, capsys):
    from wae_bench.data.builtin import MNIST

    write_pngs(tmp_path / "d" / "train", size=28)
    assert load_split(MNIST, str(tmp_path / "d"), "train", 28).images.shape[1] == 1
    assert notes(capsys) == [f"note: 6 of 6 images in {str(tmp_path / 'd' / 'train')!r} are in colour; read as "
                             f"grayscale, as this dataset's images are 1-channel"]


def test_dropped_alpha_and_stretched_images_are_noted_and_a_mixed_set_is_quiet_about_gray(tmp_path, capsys):
    train = tmp_path / "d" / "train"
    write_pngs(train, n=4)
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(train / "a" / "alpha.png")
    Image.new("L", (12, 8)).save(train / "a" / "wide.png")
    assert len(load_split(FOLDER, str(tmp_path / "d"), "train", 8).images) == 6
    where = repr(str(train))
    assert notes(capsys) == [
        f"note: 1 of 6 images in {where} have an alpha channel, dropped: transparent pixels keep the colour stored "
        f"under them; flatten them onto a background first to choose it",
        f"note: 1 of 6 images in {where} are not square; stretched to 8x8 (the loader crops nothing: crop them "
        f"first to keep their aspect)"]


def test_the_built_in_cifar10_files_are_read_without_notes(tmp_path, capsys):
    write_pngs(tmp_path / "c" / "train", size=32)
    assert len(load_split(CIFAR10, str(tmp_path / "c"), "train", 32).images) == 6
    assert notes(capsys) == []


def test_a_bilevel_image_is_read(tmp_path):
    write_pngs(tmp_path / "d" / "train")
    Image.fromarray(np.eye(8, dtype=bool)).save(tmp_path / "d" / "train" / "a" / "bw.png")
    x = load_split(FOLDER, str(tmp_path / "d"), "train", 8).images
    assert len(x) == 7 and set(x[3].unique().tolist()) == {0, 255}   # (a/bw.png, after a/000, a/002, a/004)


def test_a_read_of_few_but_large_images_is_announced(tmp_path, capsys, monkeypatch):
    write_pngs(tmp_path / "d" / "train", n=3)
    monkeypatch.setattr(files, "DECODE_NOTICE_BYTES", 1)
    load_split(FOLDER, str(tmp_path / "d"), "train", 8)
    assert "decoding 3 images from train ..." in capsys.readouterr().err


def test_an_archive_passed_as_data_root_is_answered_with_the_fix(tmp_path):
    write_pngs(tmp_path / "imgs")
    both = tmp_path / "both.zip"
    with zipfile.ZipFile(both, "w") as zf:
        for f in sorted((tmp_path / "imgs").rglob("*.png")):
            zf.write(f, "train/" + str(f.relative_to(tmp_path / "imgs")))
    with pytest.raises(WaeError, match=r"; --data-root is a file, and a zip of both splits is not read: unzip it "
                                       r"and pass the folder, or zip each split as train.zip and test.zip in one "
                                       r"folder and pass that$"):
        load_split(FOLDER, str(both), "train", 8)
    split = tmp_path / "z" / "mine-train.zip"
    split.parent.mkdir()
    split.write_bytes(both.read_bytes())
    with pytest.raises(WaeError, match=rf"; pass its parent {str(split.parent)!r} as --data-root$"):
        load_split(FOLDER, str(split), "train", 8)


def test_a_palette_image_with_transparency_bytes_is_read_without_pils_warning(tmp_path, capsys):
    import warnings

    write_pngs(tmp_path / "d" / "train", n=2)
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    pal = rgb.convert("P", palette=Image.ADAPTIVE)
    pal.save(tmp_path / "d" / "train" / "a" / "p.png", transparency=bytes([0] * 4 + [255] * 252))
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # PIL: "Palette images with Transparency expressed in bytes ..."
        x = load_split(FOLDER, str(tmp_path / "d"), "train", 8).images
    want = np.asarray(Image.open(tmp_path / "d" / "train" / "a" / "p.png").convert("RGBA"))[:, :, :3]
    assert (x[1].permute(1, 2, 0).numpy() == want).all()               # (a/000.png, a/p.png, b/001.png)
    assert notes(capsys)[0].startswith("note: 1 of 3 images in")


def test_an_exif_orientation_left_unapplied_is_noted(tmp_path, capsys):
    write_pngs(tmp_path / "d" / "train", n=2)
    exif = Image.Exif()
    exif[0x0112] = 6                                                    # "rotate 90° clockwise to view"
    Image.new("RGB", (8, 8)).save(tmp_path / "d" / "train" / "a" / "phone.jpg", exif=exif)
    Image.new("RGB", (8, 8)).save(tmp_path / "d" / "train" / "a" / "plain.jpg")
    assert len(load_split(FOLDER, str(tmp_path / "d"), "train", 8).images) == 4
    (line,) = notes(capsys)
    assert line.startswith(f"note: 1 of 4 images in {str(tmp_path / 'd' / 'train')!r} carry an EXIF orientation")
    assert line.endswith("apply it to the files first (PIL: ImageOps.exif_transpose)")


def test_a_folder_that_cannot_be_listed_is_one_line_not_skipped(tmp_path, monkeypatch):
    write_pngs(tmp_path / "d" / "train")
    locked, scandir = tmp_path / "d" / "train" / "b", os.scandir

    def refuse(path="."):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    with pytest.raises(WaeError) as e:
        load_split(FOLDER, str(tmp_path / "d"), "train", 8)
    assert str(e.value) == (f"cannot list {str(locked)!r} (Permission denied) under {str(tmp_path / 'd' / 'train')!r}; "
                            f"check its permissions, or move it out of the data folder")


def test_a_missing_split_names_torchvision_s_layout_only_for_a_dataset_it_lays_out(tmp_path):
    """``folder`` has no torchvision layout, but its missing split said
    "expected torchvision's layout, or 'train/' ..."; cifar10's still says it."""
    (tmp_path / "empty").mkdir()
    for spec, said in ((FOLDER, "no folder train split in {}: expected 'train/' or '*train*.zip' of images there; "),
                       (CIFAR10, "no cifar10 train split in {}: expected torchvision's layout, or 'train/' or ")):
        with pytest.raises(WaeError) as e:
            load_split(spec, str(tmp_path / "empty"), "train", 32)
        assert str(e.value).startswith(said.format(repr(str(tmp_path / "empty")))), e.value


def test_a_root_holding_only_a_test_split_says_where_the_training_images_go(tmp_path):
    write_pngs(tmp_path / "only" / "test", n=2)
    with pytest.raises(WaeError) as e:
        load_split(FOLDER, str(tmp_path / "only"), "train", 8)
    assert str(e.value).endswith("; put the training images in train/<class>/ beside test/ (a test split alone "
                                 "trains nothing), or fix --data-root"), e.value
