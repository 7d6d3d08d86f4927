"""Corpus preprocessing: source clips -> processed clips + manifest (DESIGN sections 2-4; paper Sec. IV-A).

For each source clip found by :mod:`cemnet_core.data.layouts`:

1. decode the video at 25 fps (``media.iter_video_frames``) and the clip's audio at 16 kHz mono;
2. landmarks: MediaPipe tracking (:class:`~cemnet_core.data.faces.FaceTracker`, VIDEO mode), or with
   ``landmarks="true"`` the ``<nnn>.landmarks.npy`` that ``cemnet synth`` stores beside each video;
3. smoothed square crop boxes around ``landmarks.ALL`` -> 128x128 crops; landmarks crop-normalised
   (frames without a face keep zero landmarks and ``valid = False``; they are never dropped);
4. the log-mel spectrogram of the audio (``audio.log_mel``);
5. one clip file (``clips.save_clip``, atomic) under ``DST/clips/`` and one line appended (and flushed) to
   ``DST/manifest.jsonl``; a clip that cannot be processed gets one line in ``DST/failures.jsonl`` with the
   reason, and the run goes on.

Runs are resumable (a clip whose source sha256 is in the manifest is skipped), shardable (``shard=(i, n)``
takes the clips whose ``clip_id`` hashes to ``i`` modulo ``n``: a deterministic partition) and parallel
(``workers`` processes, each with its own landmarker, :func:`cemnet_core.workers.run_pool`). Ctrl-C stops
a run cleanly: each clip is either written and in the manifest or not written at all, so a rerun does only
what is left. :func:`rebuild_manifest` rewrites the manifest from the clip files' metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cemnet_core.contracts import ALL, N_LANDMARKS, SAMPLE_RATE, VIDEO_FPS
from cemnet_core.data import landmarks as lm
from cemnet_core.data import media
from cemnet_core.data.audio import log_mel
from cemnet_core.data.clips import CLIP_SUFFIX, PIPELINE_VERSION, Clip, read_clip_meta, save_clip
from cemnet_core.data.faces import (
    FaceConfig,
    TrackResult,
    crop_boxes,
    crop_frames,
    landmarker_path,
)
from cemnet_core.data.layouts import SourceClip, discover
from cemnet_core.data.tracking import FaceTracker
from cemnet_core.errors import CemnetError, InputError, Interrupted, OutputError
from cemnet_core.fileio import make_folder
from cemnet_core.workers import check_stop, run_pool, run_serial

MANIFEST_NAME = "manifest.jsonl"
FAILURES_NAME = "failures.jsonl"
CLIPS_DIR = "clips"
PREVIEW_DIR = "preview"
LANDMARK_SOURCES: tuple[str, ...] = ("mediapipe", "true")
# Decoded frames kept between the tracking and the cropping pass; longer clips are decoded twice.
IN_MEMORY_BYTES = 256 * 2**20
PREVIEW_FRAMES = 3
_RECORD_KEYS = (
    "dataset",
    "speaker",
    "emotion",
    "level",
    "sentence",
    "split",
    "source",
    "source_sha256",
    "landmark_source",
    "fps",
    "sample_rate",
    "pipeline_version",
)


class ClipError(Exception):
    """One clip cannot be processed; ``reason`` goes to ``failures.jsonl``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PreprocessOptions:
    """How each clip is processed (the same in every worker)."""

    landmarks: str = "mediapipe"
    allow_silent: bool = False
    preview: bool = False
    face: FaceConfig = field(default_factory=FaceConfig)


@dataclass
class PreprocessSummary:
    """What a run did: counts, per-clip face ratios (``clip_id -> ratio``), frames and seconds."""

    total: int = 0
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    frames: int = 0
    seconds: float = 0.0
    face_ratios: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def mean_face_ratio(self) -> float:
        """Mean over processed clips of the fraction of frames with a face (0 when none)."""
        return float(np.mean(list(self.face_ratios.values()))) if self.face_ratios else 0.0


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: expected i/n, e.g. 0/4 (shards are numbered from 0)") from None
    if count < 1 or not 0 <= index < count:
        raise InputError(f"--shard {text!r}: need 0 <= i < n, e.g. 0/4 ... 3/4")
    return index, count


def in_shard(clip_id: str, shard: tuple[int, int]) -> bool:
    """Whether ``clip_id`` belongs to ``shard = (i, n)``: a stable hash of the id, modulo ``n``."""
    digest = hashlib.sha256(clip_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0]


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def done_hashes(dst: Path) -> set[str]:
    """Source sha256s already listed in ``dst/manifest.jsonl`` (malformed lines are ignored)."""
    manifest = dst / MANIFEST_NAME
    hashes: set[str] = set()
    if manifest.is_file():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            try:
                hashes.add(json.loads(line)["source_sha256"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return hashes


def _check_video_decodes(video: Path) -> None:
    """Decode the first frame (raises ``MediaError`` for a corrupt or truncated file)."""
    for _ in media.iter_video_frames(video, fps=VIDEO_FPS, chunk_frames=1):
        return
    raise ClipError("the video has no frames")


def _load_clip_audio(source: SourceClip, allow_silent: bool, notes: list[str]) -> np.ndarray:
    """``(samples,)`` float32 16 kHz audio of the clip; empty for a silent clip when allowed."""
    has_audio = False
    if source.audio is not None:
        try:
            has_audio = media.probe(source.audio).has_audio
        except CemnetError as exc:
            raise ClipError(f"cannot read the audio file {source.audio}: {exc}") from None
    if not has_audio:
        if not allow_silent:
            _check_video_decodes(source.video)  # a corrupt file is reported as corrupt, not as silent
            raise ClipError("no audio track (rerun with --allow-silent to keep video-only clips)")
        notes.append("no audio track: processed with empty audio and mel (--allow-silent)")
        return np.zeros(0, dtype=np.float32)
    try:
        return media.load_audio(source.audio, sample_rate=SAMPLE_RATE)
    except CemnetError as exc:
        if not allow_silent:
            raise ClipError(
                f"cannot decode the audio: {exc} (or rerun with --allow-silent to keep the video alone)"
            ) from None
        notes.append(f"audio not decodable, processed with empty audio and mel (--allow-silent): {exc}")
        return np.zeros(0, dtype=np.float32)


def _true_track(source: SourceClip, num_frames: int) -> TrackResult:
    if source.landmarks is None:
        raise ClipError(
            f"no true landmarks ({source.video.stem}.landmarks.npy) beside the video; use "
            "--landmarks mediapipe for corpora other than `cemnet synth`"
        )
    points = np.load(source.landmarks).astype(np.float32)
    if points.shape != (num_frames, N_LANDMARKS, 2):
        raise ClipError(f"true landmarks have shape {points.shape}, expected ({num_frames}, 478, 2)")
    valid = np.isfinite(points).all(axis=(1, 2))
    return TrackResult(points, valid, valid.astype(np.int64))


class ClipProcessor:
    """Processes one source clip at a time into ``dst``; owns one face tracker (one per worker process)."""

    def __init__(self, dst: Path, options: PreprocessOptions, model_path: Path | None = None) -> None:
        self.dst = dst
        self.options = options
        self._tracker: FaceTracker | None = None
        if options.landmarks == "mediapipe":
            self._tracker = FaceTracker(model_path, options.face, fps=VIDEO_FPS)

    def close(self) -> None:
        """Release the tracker."""
        if self._tracker is not None:
            self._tracker.close()

    def _decode_and_track(self, source: SourceClip) -> tuple[TrackResult, list[np.ndarray] | None, int]:
        """Pass 1: track faces; keep the decoded chunks while they fit in ``IN_MEMORY_BYTES``."""
        kept: list[np.ndarray] | None = []
        parts: list[TrackResult] = []
        kept_bytes, num_frames = 0, 0
        if self._tracker is not None:
            self._tracker.reset()
        for chunk in media.iter_video_frames(source.video, fps=VIDEO_FPS):
            check_stop()  # Ctrl-C in a worker: stop here, nothing written
            num_frames += chunk.shape[0]
            if self._tracker is not None:
                parts.append(self._tracker.track(chunk))
            if kept is not None:
                kept_bytes += chunk.nbytes
                kept = [*kept, chunk] if kept_bytes <= IN_MEMORY_BYTES else None
        if num_frames == 0:
            raise ClipError("the video has no frames")
        track = TrackResult.concat(parts) if self._tracker is not None else _true_track(source, num_frames)
        return track, kept, num_frames

    def process(self, source: SourceClip, sha256: str) -> dict[str, Any]:
        """Process ``source``; return its manifest record. Raises :class:`ClipError` with the reason."""
        notes: list[str] = []
        try:
            info = media.probe(source.video)
            if not info.has_video:
                raise ClipError("no video stream (an audio file?)")
            audio = _load_clip_audio(source, self.options.allow_silent, notes)
            track, kept, num_frames = self._decode_and_track(source)
        except CemnetError as exc:
            raise ClipError(f"corrupt or unreadable video: {exc}") from None
        expected = info.num_frames(VIDEO_FPS)
        if abs(num_frames - expected) > max(2, 0.02 * expected):
            notes.append(
                f"decoded {num_frames} frames where the duration gives {expected}: variable frame "
                "rate or broken timestamps; resampled to constant 25 fps"
            )
        if not track.valid.any():
            raise ClipError("no face found in any frame")
        if track.multi_face_frames:
            notes.append(
                f"several faces seen on {track.multi_face_frames} of {num_frames} frames; kept the "
                "tracked (largest, then nearest) one"
            )
        boxes = crop_boxes(track.landmarks, track.valid, self.options.face)  # (T, 4)
        chunks = kept if kept is not None else media.iter_video_frames(source.video, fps=VIDEO_FPS)
        crops, start = [], 0
        for chunk in chunks:
            count = min(chunk.shape[0], num_frames - start)
            box_chunk = boxes[start : start + count]  # (n, 4)
            crops.append(crop_frames(chunk[:count], box_chunk, self.options.face.crop_size))
            start += count
        frames = np.concatenate(crops)  # (T, 128, 128, 3)
        if frames.shape[0] != num_frames:
            raise ClipError(f"second decoding pass gave {frames.shape[0]} frames, the first {num_frames}")
        normalised = np.where(track.valid[:, None, None], lm.to_crop(track.landmarks, boxes), 0.0)
        mel = log_mel(audio) if audio.size else np.zeros((0, 80), dtype=np.float32)
        record = {
            "path": f"{CLIPS_DIR}/{source.clip_id}{CLIP_SUFFIX}",
            "clip_id": source.clip_id,
            "dataset": source.dataset,
            "speaker": source.speaker,
            "emotion": source.emotion,
            "level": source.level,
            "sentence": source.sentence,
            "split": source.split,
            "num_frames": num_frames,
            "source": str(source.video),
            "source_sha256": sha256,
            "fps": VIDEO_FPS,
            "sample_rate": SAMPLE_RATE,
            "pipeline_version": PIPELINE_VERSION,
            "landmark_source": self.options.landmarks,
            "landmark_engine": self.options.face.engine if self.options.landmarks == "mediapipe" else None,
            "face_ratio": round(track.face_ratio, 4),
            "multi_face_frames": track.multi_face_frames,
            "notes": notes,
        }
        clip = Clip(
            frames=frames,
            landmarks=normalised.astype(np.float32),
            boxes=boxes,
            valid=track.valid,
            mel=mel,
            audio=(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16),
            meta={
                key: json.dumps(value) if isinstance(value, list) else str(value)
                for key, value in record.items()
            },
        )
        check_stop()  # the last point where a worker stops without writing; past it the clip is recorded
        save_clip(self.dst / record["path"], clip)
        if self.options.preview:
            write_preview(self.dst / PREVIEW_DIR, source.clip_id, frames, normalised, track.valid)
        return record


def write_preview(
    folder: Path, clip_id: str, frames: np.ndarray, landmarks: np.ndarray, valid: np.ndarray
) -> None:
    """PNGs of a few crops (first, middle, last) at 256x256 with the ``ALL`` landmarks drawn.

    frames: ``(T, 128, 128, 3)`` uint8; landmarks: ``(T, 478, 2)`` crop-normalised; valid: ``(T,)``.
    """
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for t in sorted({0, len(frames) // 2, len(frames) - 1})[:PREVIEW_FRAMES]:
        image = cv2.resize(frames[t], (256, 256), interpolation=cv2.INTER_CUBIC)
        if valid[t]:
            for x, y in landmarks[t, list(ALL)] * 256:
                cv2.circle(image, (round(float(x)), round(float(y))), 1, (0, 255, 0), -1, cv2.LINE_AA)
        cv2.imwrite(str(folder / f"{clip_id}_{t:05d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


_WORKER: ClipProcessor | None = None


def _init_worker(dst: str, options: PreprocessOptions, model_path: str | None) -> None:
    global _WORKER
    cv2.setNumThreads(1)  # the workers fill the CPUs; OpenCV's own threads would only spin against them
    _WORKER = ClipProcessor(Path(dst), options, Path(model_path) if model_path else None)


def _run_one(processor: ClipProcessor | None, source: SourceClip, sha256: str) -> tuple[str, Any]:
    """``("ok", record)`` or ``("failed", reason)``; never raises for a bad clip."""
    processor = processor if processor is not None else _WORKER
    assert processor is not None, "worker not initialised"
    try:
        return "ok", processor.process(source, sha256)
    except ClipError as exc:
        return "failed", exc.reason
    except OutputError:
        raise
    except Exception as exc:  # a bug or an unforeseen file must not stop a long run: record it
        return "failed", f"unexpected {type(exc).__name__}: {exc}"


def _append_line(path: Path, values: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(values, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _select(
    sources: list[SourceClip], dst: Path, shard: tuple[int, int]
) -> tuple[list[tuple[SourceClip, str]], int]:
    """Clips of this shard not yet in the manifest, with their source sha256; and the number skipped."""
    done = done_hashes(dst)
    todo, skipped = [], 0
    for source in sources:
        if not in_shard(source.clip_id, shard):
            continue
        sha256 = file_sha256(source.video)
        if sha256 in done:
            skipped += 1
        else:
            todo.append((source, sha256))
    return todo, skipped


def preprocess(
    layout: str,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    options: PreprocessOptions = PreprocessOptions(),
    progress: Callable[[int, int], None] | None = None,
    show_progress: bool = True,
) -> PreprocessSummary:
    """Preprocess the corpus at ``src`` (``layout``: mead, lrs2 or folder) into ``dst``; see the module doc.

    ``shard = (i, n)`` takes only shard ``i`` of ``n``; ``workers > 1`` uses a spawn process pool.
    Per-clip problems never raise: they are counted in the summary and written to ``failures.jsonl``.
    ``progress(done, total)`` is called once before the first clip and after each clip (processed or
    failed; ``total``: the clips to do, skipped ones left out); ``show_progress=False`` silences it.
    """
    if options.landmarks not in LANDMARK_SOURCES:
        raise InputError(f"--landmarks {options.landmarks!r}: use one of {', '.join(LANDMARK_SOURCES)}")
    if workers < 1:
        raise InputError(f"--workers {workers}: need at least 1")
    dst = make_folder(dst, "choose a writable output folder")
    sources = discover(layout, src)
    todo, skipped = _select(sources, dst, shard)
    summary = PreprocessSummary(total=len(todo) + skipped, skipped=skipped)
    model_path = landmarker_path() if options.landmarks == "mediapipe" else None
    started = time.perf_counter()
    report = progress if show_progress else None

    def finish(index: int, result: tuple[str, Any]) -> None:
        (source, _), (status, payload) = todo[index], result
        if status == "ok":
            _append_line(dst / MANIFEST_NAME, payload)
            summary.processed += 1
            summary.frames += int(payload["num_frames"])
            summary.face_ratios[source.clip_id] = float(payload["face_ratio"])
        else:
            failure = {"clip_id": source.clip_id, "source": str(source.video), "reason": payload}
            _append_line(dst / FAILURES_NAME, {**failure, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
            summary.failed += 1
            summary.failures[source.clip_id] = payload
        if report is not None:
            report(summary.processed + summary.failed, len(todo))

    if report is not None:
        report(0, len(todo))
    try:
        if workers == 1 or len(todo) <= 1:
            processor = ClipProcessor(dst, options, model_path)
            try:
                run_serial(_run_one, [(processor, source, sha256) for source, sha256 in todo], finish)
            finally:
                processor.close()
        else:
            initargs = (str(dst), options, str(model_path) if model_path else None)
            jobs = [(None, source, sha256) for source, sha256 in todo]
            run_pool(_run_one, jobs, min(workers, len(todo)), _init_worker, initargs, finish)
    except KeyboardInterrupt:
        raise Interrupted(
            f"stopped by Ctrl-C; the {summary.processed} clip(s) finished are in {dst / MANIFEST_NAME}; "
            "run the same command again to do the rest"
        ) from None
    summary.seconds = time.perf_counter() - started
    return summary


def rebuild_manifest(dst: str | os.PathLike[str]) -> int:
    """Rewrite ``dst/manifest.jsonl`` from the metadata of the clip files in ``dst/clips`` (atomically).

    Returns the number of clips listed. Use it after a crash between a clip write and its manifest line,
    or after deleting clip files by hand.
    """
    dst = Path(dst)
    lines = []
    for path in sorted((dst / CLIPS_DIR).glob(f"*{CLIP_SUFFIX}")):
        meta = read_clip_meta(path)
        record: dict[str, Any] = {key: meta.get(key, "") for key in (*_RECORD_KEYS, "clip_id")}
        record.update(
            path=f"{CLIPS_DIR}/{path.name}",
            num_frames=int(meta.get("num_frames", "0")),
            face_ratio=float(meta.get("face_ratio", "0")),
            multi_face_frames=int(meta.get("multi_face_frames", "0")),
            notes=json.loads(meta.get("notes", "[]")),
            fps=float(meta.get("fps", VIDEO_FPS)),
            sample_rate=int(meta.get("sample_rate", SAMPLE_RATE)),
        )
        lines.append(json.dumps(record, sort_keys=True))
    tmp = dst / f".{MANIFEST_NAME}.tmp"
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, dst / MANIFEST_NAME)
    return len(lines)


def summary_dict(summary: PreprocessSummary) -> dict[str, Any]:
    """JSON-safe view of a summary (for ``--json`` style printing and benchmarks)."""
    return asdict(summary)
