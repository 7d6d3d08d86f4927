"""Does a briefly trained lip-sync expert find an audio shift? Leave-one-out on the real talking clips.

1. Preprocess the real talking videos (``cemnet preprocess folder REAL/video WORK/processed``; needs
   ``CEMNET_WEIGHTS_DIR`` for the face landmarker; skipped when WORK/processed already holds a manifest).
2. Train stage ``syncnet`` on every clip but one (``--held-out``, listed as the validation split so its
   loss is logged but never used to pick weights), export the ``syncnet`` release, ``load_syncnet`` it.
3. On the held-out clip, delay the audio by k frames (k < 0: advance it), k in ``--shifts``, and score it
   with ``evaluate_sync`` on the lower halves of the face crops (what the expert was trained on). A delay of
   k frames should give an AV offset of -k (``sync_scores``: offset = vshift - argmin of the distance curve).
   The same table for the untrained (randomly initialised) network is the baseline.

These are figures of our own briefly trained expert, not of the original SyncNet weights (unavailable here).

    CEMNET_WEIGHTS_DIR=../shared/assets .venv/bin/python benchmarks/lipsync_shift.py \\
        --real-data ../shared/data/real --work /tmp/lipsync_shift --steps 300
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cemnet_core.data.clips import load_clip
from cemnet_core.data.manifest import MANIFEST_NAME
from cemnet_core.data.sync_dataset import mouth_region
from cemnet_core.models.syncnet import SAMPLES_PER_FRAME, SyncNet, SyncNetConfig, evaluate_sync, load_syncnet
from cemnet_core.train.stages import export_run, train_stage

WIDTHS = {  # --width: the network's channel widths (paper: syncnet_python's v2, slow on a CPU)
    "tiny": SyncNetConfig.tiny(),
    "small": SyncNetConfig(
        audio_channels=(16, 32, 32, 32, 32, 64),
        lip_channels=(16, 32, 32, 32, 32, 64),
        fc_channels=64,
        embedding_dim=32,
    ),
    "paper": SyncNetConfig.paper(),
}


def preprocess(real: Path, processed: Path) -> None:
    """``cemnet preprocess folder REAL/video PROCESSED`` unless it was done already."""
    if (processed / MANIFEST_NAME).is_file():
        print(f"preprocessed clips found in {processed}")
        return
    if not os.environ.get("CEMNET_WEIGHTS_DIR"):
        sys.exit("set CEMNET_WEIGHTS_DIR (the folder with face_landmarker.task) to preprocess the videos")
    command = [sys.executable, "-m", "cemnet_cli.main", "preprocess", "folder", str(real / "video"),
               str(processed), "--workers", "2"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True)
    print(f"preprocessed in {time.perf_counter() - start:.0f} s")


def leave_one_out(processed: Path, folder: Path, held_out: str) -> Path:
    """A dataset folder over the same clip files: every clip in ``train`` but ``held_out`` (in ``val``)."""
    records = [json.loads(line) for line in (processed / MANIFEST_NAME).read_text().splitlines() if line]
    names = [Path(record["path"]).name.removesuffix(".clip.safetensors") for record in records]
    if held_out not in names:
        sys.exit(f"--held-out {held_out!r} is not a processed clip; choose one of {', '.join(names)}")
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for record, name in zip(records, names, strict=True):
        record["path"] = str((processed / record["path"]).resolve())
        record["split"] = "val" if name == held_out else "train"
        lines.append(json.dumps(record))
    (folder / MANIFEST_NAME).write_text("\n".join(lines) + "\n")
    return processed / next(r["path"] for r, n in zip(records, names, strict=True) if n == held_out)


def shifted(audio: np.ndarray, frames: int) -> np.ndarray:
    """``audio`` delayed by ``frames`` video frames (advanced if negative), zero-filled, same length."""
    samples = abs(frames) * SAMPLES_PER_FRAME
    if frames == 0:
        return audio
    if frames > 0:
        return np.concatenate([np.zeros(samples, audio.dtype), audio[:-samples]])
    return np.concatenate([audio[samples:], np.zeros(samples, audio.dtype)])


def score_shifts(model: SyncNet, clip_path: Path, shifts: list[int]) -> list[dict[str, float]]:
    """AV offset, LSE-C and LSE-D of the clip with its audio delayed by each of ``shifts`` frames."""
    clip = load_clip(clip_path, ("frames", "audio"))
    lips = torch.from_numpy(np.ascontiguousarray(mouth_region(clip.frames)))  # (T, 64, 128, 3)
    audio = clip.audio.astype(np.float32) / 32768.0
    rows = []
    for k in shifts:
        scores = evaluate_sync(model, lips, torch.from_numpy(shifted(audio, k)))
        rows.append({"shift": k, "expected": -k, "offset": scores.offset, "lse_c": scores.lse_c,
                     "lse_d": scores.lse_d})  # fmt: skip
    return rows


def print_table(title: str, rows: list[dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"{'audio delay k':>14} {'expected offset':>16} {'AV offset':>10} {'LSE-C':>8} {'LSE-D':>8}")
    for row in rows:
        print(f"{row['shift']:>14d} {row['expected']:>16d} {row['offset']:>10d} {row['lse_c']:>8.3f} "
              f"{row['lse_d']:>8.3f}")  # fmt: skip
    found = sum(row["offset"] == row["expected"] for row in rows)
    print(f"shift found in {found} of {len(rows)} cases")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--real-data", type=Path, default=Path(os.environ.get("CEMNET_REAL_DATA", "../shared/data/real"))
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/lipsync_shift"))
    parser.add_argument(
        "--held-out", default="styletalk__KristiNoem", help="clip name (file stem) to test on"
    )
    parser.add_argument("--width", choices=sorted(WIDTHS), default="small")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--shifts", type=int, nargs="+", default=[-6, -3, 0, 3, 6])
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    processed = args.work / "processed"
    preprocess(args.real_data, processed)
    held_out = leave_one_out(processed, args.work / "loo", args.held_out)
    config = WIDTHS[args.width]
    run = args.work / f"run_{args.width}_{args.steps}"
    overrides = [
        f"model.audio_channels={list(config.audio_channels)}",
        f"model.lip_channels={list(config.lip_channels)}",
        f"model.fc_channels={config.fc_channels}", f"model.embedding_dim={config.embedding_dim}",
        f"loop.batch_size={args.batch_size}", f"loop.lr={args.lr}", "loop.early_stop_metric=",
        "loop.val_every=50", "loop.log_every=25", "loop.checkpoint_every=100", "loop.tensorboard=false",
        "loop.progress=false",
        "samples_per_clip=64", "val_samples_per_clip=32", "cache_clips=16",
    ]  # fmt: skip
    torch.manual_seed(0)
    print_table(f"untrained network ({args.width}), held-out {args.held_out}",
                score_shifts(SyncNet(config), held_out, args.shifts))  # fmt: skip
    start = time.perf_counter()
    resume = (run / "checkpoints" / "last.pt").is_file()
    train_stage("syncnet", args.work / "loo", run, overrides=[] if resume else overrides, resume=resume,
                device=args.device, steps=args.steps)  # fmt: skip
    print(f"\ntrained {args.steps} steps (batch {args.batch_size}) in {time.perf_counter() - start:.0f} s")
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["split"] == "val":
            loss, error = record["loss"], record["error"]
            print(f"  step {record['step']:>5d}  held-out val loss {loss:.3f}  error {error:.3f}")
    (folder,) = export_run(run, args.work / "release")
    print_table(f"trained expert ({args.width}, {args.steps} steps), held-out {args.held_out}",
                score_shifts(load_syncnet(folder), held_out, args.shifts))  # fmt: skip
    print("\n(our own briefly trained expert, not the original SyncNet weights)")


if __name__ == "__main__":
    main()
