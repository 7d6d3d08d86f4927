"""``cemnet detect`` end to end through Typer's runner on small marked and unmarked videos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import typer
from typer.testing import CliRunner

from cemnet_cli import detect_cmd
from cemnet_core.data import media
from cemnet_core.errors import MediaError
from cemnet_core.watermark import embed_watermark, provenance_metadata


def _app() -> typer.Typer:
    app = typer.Typer()
    detect_cmd.register(app)
    app.command("noop")(lambda: None)  # a second command keeps `detect` a subcommand, as in the cemnet app
    return app


def _scene(count: int = 20, size: int = 192) -> np.ndarray:
    """Textured frames ``(count, size, size, 3)`` uint8 with a moving bright disc (a stand-in for a face)."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 3) * 120 + 120
    frames = np.empty((count, size, size, 3), dtype=np.uint8)
    for index in range(count):
        frame = texture.copy()
        cv2.circle(frame, (size // 2 + index, size // 2), size // 5, 200.0, -1)
        frames[index] = np.clip(frame, 0, 255).astype(np.uint8)[..., None]
    return frames


def _videos(folder: Path) -> tuple[Path, Path]:
    frames = _scene()
    marked = media.write_video(
        folder / "generated.mp4", embed_watermark(frames), metadata=provenance_metadata()
    )
    plain = media.write_video(folder / "camera.mp4", frames)
    return marked, plain


def test_detect_prints_a_table_with_verdicts(tmp_path: Path) -> None:
    marked, plain = _videos(tmp_path)
    result = CliRunner().invoke(_app(), ["detect", str(marked), str(plain)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if ".mp4" in line}
    assert "made by cemnet" in rows[str(marked)] and "yes" in rows[str(marked)]
    assert "no cemnet mark" in rows[str(plain)] and "yes" not in rows[str(plain)]


def test_detect_json_reports_scores(tmp_path: Path) -> None:
    marked, plain = _videos(tmp_path)
    result = CliRunner().invoke(_app(), ["detect", "--json", "--max-frames", "10", str(marked), str(plain)])
    assert result.exit_code == 0, result.output
    records = {record["file"]: record for record in map(json.loads, result.output.splitlines())}
    assert records[str(marked)]["marked"] and records[str(marked)]["metadata_tag"]
    assert records[str(marked)]["made_by_cemnet"] and records[str(marked)]["frames_used"] == 10
    assert records[str(marked)]["z_score"] > 10
    assert not records[str(plain)]["marked"] and not records[str(plain)]["made_by_cemnet"]
    assert records[str(plain)]["z_score"] < 4


def test_detect_missing_file_is_a_user_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["detect", str(tmp_path / "nope.mp4")])
    assert isinstance(result.exception, MediaError) and "not found" in str(result.exception)
