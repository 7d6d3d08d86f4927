"""references: reference faces from images, folders and videos; choosing the N references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cemnet_core.errors import NoFaceError
from cemnet_core.generate import GenerateConfig
from cemnet_core.references import choose_references, load_references

PORTRAIT = "image/sadtalker__people_0.png"  # 474x474 real photo
CONFIG = GenerateConfig(device="cpu", chunk_frames=24, batch_size=8)


def test_choose_references_covers_different_mouths() -> None:
    base = np.random.default_rng(1).random((57, 2))
    shapes = np.stack([base * (1 + 0.01 * k) for k in range(10)] + [base * 3.0])  # one very different mouth
    chosen = choose_references(shapes, 3)
    assert len(chosen) == 3 and len(set(chosen)) == 3 and 10 in chosen
    assert choose_references(shapes[:2], 5) == [choose_references(shapes[:2], 2)[i % 2] for i in range(5)]


@pytest.mark.real
def test_image_formats_and_exif_rotation_are_read(weights_dir: Path, real_data: Path, tmp_path: Path) -> None:
    photo = Image.open(real_data / PORTRAIT).convert("RGB")
    folder = tmp_path / "refs"
    folder.mkdir()
    photo.convert("L").save(folder / "a_grey.png")
    photo.convert("RGBA").save(folder / "b_rgba.png")
    photo.convert("CMYK").save(folder / "c_cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    photo.rotate(90, expand=True).save(folder / "d_rotated.jpg", exif=exif)
    refs = load_references(folder, CONFIG)
    assert len(refs.frames) == 4 and not refs.skipped
    for frame, points in zip(refs.frames, refs.landmarks, strict=True):
        assert frame.shape == (474, 474, 3)
        assert points[152, 1] > points[10, 1]  # chin below the forehead: upright
    np.testing.assert_allclose(refs.landmarks[3], refs.landmarks[0], atol=12)


@pytest.mark.real
def test_faceless_images_are_skipped_or_refused(weights_dir: Path, real_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "refs"
    folder.mkdir()
    with pytest.raises(NoFaceError, match="holds no images"):
        load_references(folder, CONFIG)
    Image.new("RGB", (200, 200), (90, 120, 200)).save(folder / "blank.png")
    with pytest.raises(NoFaceError, match="no face"):
        load_references(folder, CONFIG)
    (folder / "portrait.png").write_bytes((real_data / PORTRAIT).read_bytes())
    with pytest.warns(UserWarning, match="blank.png"):
        refs = load_references(folder, CONFIG)
    assert len(refs.frames) == 1 and "blank.png" in refs.skipped[0]


@pytest.mark.real
def test_8k_image_is_downscaled_for_detection(weights_dir: Path, real_data: Path, tmp_path: Path) -> None:
    canvas = Image.new("RGB", (7680, 4320), (40, 40, 40))
    canvas.paste(Image.open(real_data / PORTRAIT).convert("RGB").resize((3000, 3000)), (2340, 660))
    canvas.save(tmp_path / "8k.jpg", quality=85)
    refs = load_references(tmp_path / "8k.jpg", CONFIG)
    assert refs.frames[0].shape == (1080, 1920, 3)
    centre = refs.landmarks[0].mean(axis=0)
    assert 800 < centre[0] < 1120 and 300 < centre[1] < 800  # the face sits in the middle


# ---------------------------------------------------------------- end to end
