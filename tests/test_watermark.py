"""Provenance watermark: invisibility on real frames, survival of re-encode + half-size resize + small crops,
no false alarms on real videos, key specificity, the null distribution, and the metadata tag."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from cemnet_core.data import media
from cemnet_core.errors import MediaError
from cemnet_core.watermark import (
    WatermarkConfig,
    WindowMarker,
    correlate,
    crop_hypotheses,
    detect_watermark,
    embed_watermark,
    false_positive_bound,
    has_provenance_tag,
    pattern,
    provenance_metadata,
    psnr,
)

SOURCE = "video/styletalk__Obama_clip1.mp4"  # 256x256, 30 fps
UNMARKED = [
    "video/styletalk__KristiNoem.mp4",
    "video/sadtalker__WDA_KatieHill_000.mp4",  # 512x512 mpeg4
    "video_silent/dreamtalk__W009_front_happy_level3_001.mp4",
]


def _ffmpeg(*args: str) -> None:
    subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def clip(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """First 50 frames of a real clip, marked and written with the provenance tags, plus attacked copies."""
    folder = tmp_path_factory.mktemp("watermark")
    frames = next(media.iter_video_frames(real_data / SOURCE, chunk_frames=50))  # (50, 256, 256, 3)
    marked = embed_watermark(frames, frame_offset=0)
    marked_path = media.write_video(folder / "marked.mp4", marked, metadata=provenance_metadata())
    original_path = media.write_video(folder / "original.mp4", frames)
    halved = folder / "halved.mp4"  # CRF 23 re-encode at half size, container tags stripped
    _ffmpeg(
        "-i",
        str(marked_path),
        "-vf",
        "scale=128:128",
        "-c:v",
        "libx264",
        "-crf",
        "23",
        "-map_metadata",
        "-1",
        str(halved),
    )
    cropped = folder / "cropped.mp4"  # a few pixels cropped off (unevenly), then halved, CRF 23
    _ffmpeg(
        "-i",
        str(marked_path),
        "-vf",
        "crop=250:250:4:2,scale=126:126",
        "-c:v",
        "libx264",
        "-crf",
        "23",
        "-map_metadata",
        "-1",
        str(cropped),
    )
    return {
        "frames": frames,
        "marked": marked,
        "marked_path": marked_path,
        "original_path": original_path,
        "halved": halved,
        "cropped": cropped,
    }


def test_mark_is_invisible_on_real_frames(clip: dict[str, object], real_data: Path) -> None:
    frames, marked = clip["frames"], clip["marked"]
    assert isinstance(frames, np.ndarray) and isinstance(marked, np.ndarray)
    assert marked.shape == frames.shape and marked.dtype == np.uint8
    assert 40.0 <= psnr(frames, marked) < 60.0  # changed, but invisibly (measured: 41.2 dB)
    large = next(media.iter_video_frames(real_data / UNMARKED[1], chunk_frames=4))  # (4, 512, 512, 3)
    assert 40.0 <= psnr(large, embed_watermark(large)) < 60.0


def test_embedding_is_stateless_across_chunks(clip: dict[str, object]) -> None:
    frames, marked = clip["frames"], clip["marked"]
    assert isinstance(frames, np.ndarray)
    chunks = [embed_watermark(frames[start : start + 16], frame_offset=start) for start in range(0, 50, 16)]
    np.testing.assert_array_equal(np.concatenate(chunks), marked)
    np.testing.assert_array_equal(embed_watermark(frames[7], frame_offset=7), marked[7])  # a single frame


def test_window_marker_marks_as_embed_watermark_does(real_data: Path) -> None:
    background = media.read_image(real_data / "image/sadtalker__people_0.png")  # (474, 474, 3)
    height, width = background.shape[:2]
    marker = WindowMarker(background)
    np.testing.assert_array_equal(marker.mark(None), embed_watermark(background))
    rng = np.random.default_rng(0)
    windows = [(300, 420, 120, 360), (0, 60, 0, 90), (400, height, 380, width), (0, height, 0, width)]
    for y0, y1, x0, x1 in windows:  # inside, at a corner, at the far corner, the whole frame
        pixels = rng.integers(0, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
        frame = background.copy()
        frame[y0:y1, x0:x1] = pixels
        difference = np.abs(marker.mark(((y0, y1, x0, x1), pixels)).astype(int) - embed_watermark(frame))
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-4  # rounding of the RMS sum only
    with pytest.raises(ValueError, match="uint8"):
        WindowMarker(background.astype(np.float32))


def test_embedding_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"\(n, H, W, 3\) uint8"):
        embed_watermark(np.zeros((2, 32, 32, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="frame_offset"):
        embed_watermark(np.zeros((2, 32, 32, 3), dtype=np.uint8), frame_offset=-1)


def test_marked_video_is_detected_with_its_metadata_tag(clip: dict[str, object]) -> None:
    info = media.probe(clip["marked_path"])  # type: ignore[arg-type]
    assert has_provenance_tag(info.metadata)
    assert "AI-generated" in info.metadata["comment"]
    detection = detect_watermark(clip["marked_path"])  # type: ignore[arg-type]
    assert detection.marked and detection.metadata_tag and detection.made_by_cemnet
    assert detection.frames_used == 50
    assert detection.z_score >= 2 * WatermarkConfig().threshold


def test_mark_survives_crf23_reencode_at_half_size(clip: dict[str, object]) -> None:
    assert media.probe(clip["halved"]).width == 128  # type: ignore[arg-type]
    detection = detect_watermark(clip["halved"])  # type: ignore[arg-type]
    assert not detection.metadata_tag  # the tags were stripped: only the watermark is left
    assert detection.marked and detection.z_score >= WatermarkConfig().threshold + 3


def test_mark_survives_a_small_crop(clip: dict[str, object]) -> None:
    detection = detect_watermark(clip["cropped"])  # type: ignore[arg-type]
    assert detection.marked, detection


def test_unmarked_real_videos_are_not_marked(clip: dict[str, object], real_data: Path) -> None:
    paths = [clip["original_path"], *(real_data / name for name in UNMARKED)]
    for path in paths:
        detection = detect_watermark(path, max_frames=60)  # type: ignore[arg-type]
        assert not detection.marked and not detection.metadata_tag, (path, detection)
        assert detection.z_score < 4.0, (path, detection)


def test_another_key_does_not_see_the_mark(clip: dict[str, object]) -> None:
    other = WatermarkConfig(key="someone-else")
    assert float(np.mean(pattern(other) == pattern())) == pytest.approx(0.5, abs=0.03)
    detection = detect_watermark(clip["halved"], other)  # type: ignore[arg-type]
    assert not detection.marked and detection.z_score < 4.0


def test_null_z_scores_over_random_keys_are_standard_normal(clip: dict[str, object]) -> None:
    """For content that carries no mark, z over independent keys has mean 0 and unit variance."""
    frames = clip["frames"]
    assert isinstance(frames, np.ndarray)
    config = WatermarkConfig(max_crop_steps=0)
    side = config.grid * config.work_cell
    luma = frames[:10].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    mean_luma = np.ascontiguousarray(luma.mean(axis=0)[:side, :side])  # (256, 256) unmarked
    z_scores = np.array(
        [correlate(mean_luma, WatermarkConfig(key=f"k{i}", max_crop_steps=0))[1] for i in range(300)]
    )
    assert abs(z_scores.mean()) < 0.25
    assert 0.8 < z_scores.std() < 1.2


def test_false_positive_bound_and_hypotheses() -> None:
    hypotheses = crop_hypotheses()
    assert len(hypotheses) == 81 and hypotheses[0] == (0.0, 0.0, 0.0, 0.0)
    bound = false_positive_bound(WatermarkConfig().threshold, len(hypotheses))
    assert 1e-7 < bound < 1e-5
    assert false_positive_bound(0.0, 5) == 1.0


def test_config_and_detection_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="grid"):
        WatermarkConfig(grid=2)
    with pytest.raises(ValueError, match="expected shape"):
        correlate(np.zeros((10, 10), dtype=np.float32))
    with pytest.raises(MediaError, match="not found"):
        detect_watermark(tmp_path / "missing.mp4")
