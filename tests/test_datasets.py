"""TFDS builders: gemstones (folder/zip, every bad-file kind) and synthetic_gems.

Inputs are tiny generated files in tmp_path. The real photos are used when
present: listing always, full preparation (about a minute) only with
GEMGAN_SLOW=1.
"""
import io
import logging
import os
import pathlib
import struct
import time
import zipfile
import zlib

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from gemgan.datasets import gem_render
from gemgan.datasets import gemstones
from gemgan.datasets import image_files
from gemgan.datasets import synthetic_gems

SLOW = os.environ.get("GEMGAN_SLOW") == "1"
OFFLINE = dict(try_download_gcs=False)

# ------------------------------------------------------------ file makers


def _jpeg(colour, size=(40, 30), mode="RGB", **kw) -> bytes:
  buf = io.BytesIO()
  Image.new(mode, size, colour).save(buf, format="JPEG", quality=95, **kw)
  return buf.getvalue()


def _png_image(image: Image.Image, **kw) -> bytes:
  buf = io.BytesIO()
  image.save(buf, format="PNG", **kw)
  return buf.getvalue()


def _raw_png(array: np.ndarray, bit_depth: int, colour_type: int, width=None, height=None):
  """A PNG written by hand: 16-bit RGB (Pillow cannot write it) or a lying header."""
  h, w = array.shape[:2]
  dtype = ">u2" if bit_depth == 16 else "u1"
  raw = b"".join(b"\x00" + array[y].astype(dtype).tobytes() for y in range(h))

  def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

  header = struct.pack(">IIBBBBB", width or w, height or h, bit_depth, colour_type, 0, 0, 0)
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) +
          chunk(b"IEND", b""))


def _palette_png(transparent: bool) -> bytes:
  image = Image.new("P", (36, 36), 1)
  image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
  if transparent:
    image.paste(0, (0, 0, 36, 18))  # top half: index 0, transparent
    return _png_image(image, transparency=0)
  return _png_image(image)


# Relative path -> (bytes, expected RGB of the result or None when skipped,
# tolerance). Colours are solid so that the resized result is predictable.
GOOD = {
    "Ruby/ruby 1.jpg": (_jpeg((200, 10, 30)), (200, 10, 30), 6),
    "Ruby/rubí été (2).jpg": (_jpeg((180, 20, 40), size=(30, 50)), (180, 20, 40), 6),
    "Ruby/ruby_3.JPEG": (_jpeg((150, 0, 20)), (150, 0, 20), 6),
    "Sapphire Blue/grey.jpg": (_jpeg(100, mode="L"), (100, 100, 100), 3),
    "Sapphire Blue/rgba.png": (_png_image(Image.new("RGBA", (30, 30), (255, 0, 0, 0))),
                               (255, 255, 255), 0),
    "Sapphire Blue/palette_alpha.png": (_palette_png(True), None, 0),  # half white, half green
    "Sapphire Blue/palette.png": (_palette_png(False), (0, 255, 0), 0),
    "Sapphire Blue/cmyk.jpg": (_jpeg((0, 255, 255, 0), mode="CMYK"), (255, 0, 0), 12),
    "Sapphire Blue/grey16.png": (_png_image(Image.fromarray(np.full((20, 24), 0x8000,
                                                                   np.uint16))),
                                 (128, 128, 128), 0),
    "Sapphire Blue/rgb16.png": (_raw_png(np.tile(np.array([0x8000, 0xFFFF, 0x1234], np.uint16),
                                                 (20, 24, 1)), 16, 2), (128, 255, 18), 0),
    "Émeraude/émeraude 1.jpg": (_jpeg((10, 160, 60)), (10, 160, 60), 6),
    "Émeraude/emerald_2.png": (_png_image(Image.new("RGB", (50, 20), (20, 140, 70))),
                               (20, 140, 70), 0),
}
_truncated = _jpeg((1, 2, 3), size=(64, 64))
BAD = {  # relative path -> (bytes, reason)
    "Émeraude/truncated.jpg": (_truncated[:len(_truncated) // 2], image_files.CORRUPT),
    "Émeraude/zero.jpg": (b"", image_files.EMPTY),
    "Émeraude/not_an_image.jpg": (b"<html>404 Not Found</html>\n", image_files.NOT_IMAGE),
    "Émeraude/bomb.png": (_raw_png(np.zeros((2, 2), np.uint8), 8, 0, 30000, 30000),
                          image_files.TOO_LARGE),
    "Ruby/.DS_Store": (b"\x00\x00\x00\x01Bud1", image_files.HIDDEN),
    ".DS_Store": (b"\x00\x00\x00\x01Bud1", image_files.HIDDEN),
    "Ruby/notes.txt": (b"bought 2019", image_files.NOT_IMAGE_EXT),
}
CLASSES = ["Ruby", "Sapphire Blue", "Émeraude"]
CONVERTED = {"greyscale": 1, "alpha on white": 2, "palette": 1, "CMYK": 1, "16-bit": 1}


def _expected_skips(extra=()):
  counts = {}
  for _, reason in list(BAD.values()) + list(extra):
    counts[reason] = counts.get(reason, 0) + 1
  return counts


def _write_tree(root: pathlib.Path, files: dict):
  for rel, data in files.items():
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _prepare(manual, data_dir, size=32, resize="center_crop"):
  builder = gemstones.Gemstones(config=gemstones.make_config(size, resize), data_dir=data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual), **OFFLINE))
  return gemstones.Gemstones(config=gemstones.make_config(size, resize), data_dir=data_dir)


def _records(builder, split="train"):
  """All records of a split, in file order, as {filename: (image, label)}."""
  data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))
  names = [f.decode() for f in data["filename"]]
  return names, data["image"], data["label"]


# ----------------------------------------------------------- gemstones

@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory):
  root = tmp_path_factory.mktemp("messy") / "gems"
  _write_tree(root, {k: v[0] for k, v in {**GOOD, **BAD}.items()})
  (root / "Empty").mkdir()
  return root


@pytest.fixture(scope="module")
def messy_prepared(messy_folder, tmp_path_factory):
  return _prepare(messy_folder, tmp_path_factory.mktemp("data"))


def test_folder_counts_labels_and_report(messy_prepared):
  b = messy_prepared
  assert list(b.info.splits.keys()) == ["train"]
  assert b.info.splits["train"].num_examples == len(GOOD)
  assert b.info.features["label"].names == CLASSES
  names, images, labels = _records(b)
  assert sorted(names) == sorted(GOOD)
  for name, label in zip(names, labels):
    assert CLASSES[label] == name.split("/")[0]
  assert images.shape == (len(GOOD), 32, 32, 3) and images.dtype == np.uint8
  report = b.info.metadata["report"]
  assert report["kept"] == {"train": len(GOOD)}
  assert report["skipped"] == _expected_skips()
  assert report["converted"] == CONVERTED
  assert report["empty_folders"] == ["Empty"]


def test_conversions_give_the_right_colours(messy_prepared):
  names, images, _ = _records(messy_prepared)
  for name, image in zip(names, images.astype(int)):
    _, expected, tol = GOOD[name]
    if expected is not None:
      np.testing.assert_allclose(image[8:24, 8:24].reshape(-1, 3).mean(0), expected, atol=tol,
                                 err_msg=name)
  # Palette with a transparent top half: white on top, opaque green below.
  image = images[names.index("Sapphire Blue/palette_alpha.png")].astype(int)
  np.testing.assert_array_equal(image[2, 16], (255, 255, 255))
  np.testing.assert_array_equal(image[29, 16], (0, 255, 0))


def test_every_bad_file_is_named_in_a_warning(messy_folder, tmp_path, caplog):
  with caplog.at_level(logging.INFO):
    _prepare(messy_folder, tmp_path)
  text = caplog.text
  for rel, (_, reason) in BAD.items():
    assert f"Skipped {rel}: {reason}" in text, rel
  assert "Ignored empty folder Empty/" in text
  assert f"kept {len(GOOD)} images" in text and f"skipped {len(BAD)} files" in text


def test_zip_gives_the_same_records_as_the_folder(messy_folder, messy_prepared, tmp_path):
  (tmp_path / "manual").mkdir()
  archive = tmp_path / "manual" / "Gemstones.zip"
  with zipfile.ZipFile(archive, "w") as z:
    for path in sorted(messy_folder.rglob("*")):
      rel = path.relative_to(messy_folder).as_posix()
      if path.is_dir():
        z.writestr(f"Gemstones/{rel}/", b"")
      else:
        z.writestr(f"Gemstones/{rel}", path.read_bytes())
        z.writestr(f"__MACOSX/Gemstones/{os.path.dirname(rel)}/._{path.name}", b"\x00\x05")
    z.writestr("../escape.jpg", _jpeg((1, 1, 1)))
    z.writestr("Gemstones/Ruby/../../../escape2.jpg", _jpeg((1, 1, 1)))
    z.writestr("/etc/absolute.jpg", _jpeg((1, 1, 1)))
  # The manual dir may be the zip itself or a folder that holds it.
  for manual, data_dir in ((archive, tmp_path / "d1"), (archive.parent, tmp_path / "d2")):
    b = _prepare(manual, data_dir)
    assert b.info.features["label"].names == CLASSES
    names, images, labels = _records(b)
    ref_names, ref_images, ref_labels = _records(messy_prepared)
    assert names == ref_names
    np.testing.assert_array_equal(images, ref_images)
    np.testing.assert_array_equal(labels, ref_labels)
    report = b.info.metadata["report"]
    n_macosx = len(BAD) + len(GOOD)  # one ._ file per real file
    assert report["skipped"] == _expected_skips(
        [(None, image_files.UNSAFE)] * 3 + [(None, image_files.HIDDEN)] * n_macosx)


def test_split_layout_and_files_outside_class_folders(tmp_path):
  files = {f"train/{c}/{c.lower()}_{i}.png": _png_image(Image.new("RGB", (20, 20), (i, 0, 0)))
           for c, n in (("Agate", 3), ("Beryl", 2)) for i in range(n)}
  files.update({f"test/{c}/{c.lower()}_{i}.png": _png_image(Image.new("RGB", (20, 20), (0, i, 0)))
                for c, n in (("Agate", 1), ("Citrine", 2)) for i in range(n)})
  files["train/loose.png"] = _png_image(Image.new("RGB", (20, 20)))
  _write_tree(tmp_path / "in" / "archive", files)  # a wrapper folder, looked through
  b = _prepare(tmp_path / "in", tmp_path / "data")
  assert b.info.features["label"].names == ["Agate", "Beryl", "Citrine"]
  assert {k: v.num_examples for k, v in b.info.splits.items()} == {"train": 5, "test": 3}
  names, _, labels = _records(b, "test")
  assert sorted(zip(names, labels)) == [("test/Agate/agate_0.png", 0),
                                        ("test/Citrine/citrine_0.png", 2),
                                        ("test/Citrine/citrine_1.png", 2)]
  assert b.info.metadata["report"]["skipped"] == {image_files.NO_CLASS: 1}


def test_preparation_is_deterministic(messy_folder, messy_prepared, tmp_path):
  again = _prepare(messy_folder, tmp_path)

  def record_files(b):
    return {p.name: p.read_bytes() for p in pathlib.Path(b.data_dir).glob("*.tfrecord*")}

  first, second = record_files(messy_prepared), record_files(again)
  assert first and first == second


def test_center_crop_and_pad():
  # A 64x32 white photo with a black 16x16 square in the middle.
  a = np.full((32, 64, 3), 255, np.uint8)
  a[8:24, 24:40] = 0
  data = _png_image(Image.fromarray(a))
  crop, _ = image_files.load_square(data, 16, "center_crop")
  pad, _ = image_files.load_square(data, 16, "pad")
  dark = lambda x: (x.mean(-1) < 128).mean()  # noqa: E731
  assert dark(crop) == pytest.approx(0.25, abs=0.02)  # the square is half the crop's side
  assert dark(pad) == pytest.approx(0.0625, abs=0.02)  # and a quarter of the padded side
  assert (pad[0] == 255).all() and (pad[-1] == 255).all()  # padding takes the border colour


def test_big_jpeg_is_decoded_at_reduced_size_with_the_same_look():
  rng = np.random.default_rng(0)
  small = rng.integers(0, 255, (24, 32, 3)).astype(np.uint8)
  big = np.asarray(Image.fromarray(small).resize((1280, 960), Image.Resampling.BICUBIC))
  buf = io.BytesIO()
  Image.fromarray(big).save(buf, format="JPEG", quality=95)
  fast, _ = image_files.load_square(buf.getvalue(), 32, "center_crop")
  full = np.asarray(Image.fromarray(big).resize((32, 32), Image.Resampling.LANCZOS,
                                                box=(160, 0, 1120, 960)))
  assert np.abs(fast.astype(int) - full.astype(int)).mean() < 4


def test_missing_input_says_where_to_put_the_archive(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"no input at .*nowhere.*Gemstones\.zip"):
    _prepare(tmp_path / "nowhere", tmp_path / "data")


def test_no_image_files_says_where_it_looked(tmp_path):
  _write_tree(tmp_path / "in", {"readme.txt": b"x", "A/.DS_Store": b"x"})
  with pytest.raises(ValueError, match=r"No image files in .*in"):
    _prepare(tmp_path / "in", tmp_path / "data")


def test_no_usable_image_is_an_error(tmp_path):
  _write_tree(tmp_path / "in", {"A/zero.jpg": b"", "A/bad.png": b"not a png"})
  with pytest.raises(ValueError, match=r"No usable images in .*in.*skipped 2 files"):
    _prepare(tmp_path / "in", tmp_path / "data")


def test_real_photos_layout(real_gems_dir):
  """Listing only (no decoding): 4,400 images in 88 class folders, one split."""
  report = image_files.Report(str(real_gems_dir))
  source = image_files.Source(real_gems_dir)
  layout = image_files.plan_layout(source.list(report), source.name, report)
  assert list(layout.splits) == ["train"]
  assert len(layout.splits["train"]) == 4400 and len(layout.class_names) == 88
  assert not report.skipped


@pytest.mark.skipif(not SLOW, reason="prepares the real photos twice (~1 min); GEMGAN_SLOW=1")
def test_real_photos_folder_and_zip_at_96(real_gems_dir, tmp_path):
  archive = tmp_path / "gemstones.zip"
  with zipfile.ZipFile(archive, "w") as z:
    for path in sorted(real_gems_dir.rglob("*.jpg")):
      z.write(path, f"gemstones/{path.relative_to(real_gems_dir).as_posix()}")
  results = []
  for manual in (real_gems_dir, archive):
    start = time.perf_counter()
    b = _prepare(manual, tmp_path / f"data_{manual.suffix or 'folder'}", size=96)
    print(f"prepared {manual} in {time.perf_counter() - start:.1f} s")
    assert b.info.splits["train"].num_examples == 4400
    assert b.info.features["label"].num_classes == 88
    results.append(_records(b))
  assert results[0][0] == results[1][0]
  np.testing.assert_array_equal(results[0][1], results[1][1])


# ------------------------------------------------------ synthetic_gems


def test_render_depends_only_on_seed_and_index():
  images, labels = gem_render.render(0, 0, 20, 32)
  assert images.shape == (20, 32, 32, 3) and images.dtype == np.uint8
  assert labels.dtype == np.int32 and ((0 <= labels) & (labels < len(gem_render.KINDS))).all()
  part, part_labels = gem_render.render(0, 7, 5, 32)
  np.testing.assert_array_equal(part, images[7:12])
  np.testing.assert_array_equal(part_labels, labels[7:12])
  other, _ = gem_render.render(1, 0, 20, 32)
  assert (other != images).any()


def test_render_looks_like_objects_on_plain_backgrounds():
  images, labels = gem_render.render(0, 0, 200, 32)
  assert set(labels) == set(range(len(gem_render.KINDS)))
  x = images.astype(np.float32)
  # Smooth, not noise: neighbouring pixels are close on average.
  assert np.abs(np.diff(x, axis=2)).mean() < 20
  # A stone in the middle that differs from the background at the corners.
  corners = np.stack([x[:, 0, 0], x[:, 0, -1], x[:, -1, 0], x[:, -1, -1]], 1)
  background = np.median(corners, axis=1)[:, None, None]
  differs = np.abs(x - background).max(-1) > 24
  covered = differs.mean((1, 2))
  assert np.median(covered) > 0.2 and covered.max() < 0.95
  assert differs[:, 12:20, 12:20].mean() > 0.8
  # Both light and dark backgrounds occur.
  level = background.mean((1, 2, 3))
  assert (level > 180).mean() > 0.3 and (level < 60).mean() > 0.15


def test_synthetic_builder_matches_render(tmp_path):
  config = synthetic_gems.make_config(32, 40)
  assert config.name == "32_n40"
  assert synthetic_gems.make_config(96) is synthetic_gems.SyntheticGems.BUILDER_CONFIGS[2]
  builder = synthetic_gems.SyntheticGems(config=config, data_dir=tmp_path)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(**OFFLINE))
  assert builder.info.splits["train"].num_examples == 40
  assert builder.info.features["label"].names == list(gem_render.KINDS)
  data = tfds.as_numpy(builder.as_dataset(split="train", batch_size=-1))
  ref_images, ref_labels = gem_render.render(0, 0, 40, 32)
  key = lambda imgs: [im.tobytes() for im in imgs]  # noqa: E731
  got = sorted(zip(key(data["image"]), data["label"]))
  want = sorted(zip(key(ref_images), ref_labels))
  assert got == want
