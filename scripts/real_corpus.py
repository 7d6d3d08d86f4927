"""Lay out the shared real talking videos as an LRS2-style corpus with speaker-disjoint splits (no copies).

    .venv/bin/python scripts/real_corpus.py DST [--shared ../shared] [--grid-s1 40]
    .venv/bin/cemnet preprocess lrs2 DST DATA --workers 2

``DST`` gets ``main/<speaker>/<clip>.mp4`` symbolic links to the videos (the media stay in ``shared/``; never
copy them into the repository) and LRS2 filelists ``train.txt`` / ``val.txt`` / ``test.txt``, so ``cemnet
preprocess lrs2`` records each clip's speaker and split (:func:`cemnet_core.data.layouts.discover_lrs2`):

- ``train``: ``shared/data/real_train/video`` (292 real talking videos of 59 people, see its README). GRID
  speaker s1 is 231 of them (56 % of the minutes): only ``--grid-s1`` of its files are kept (evenly spaced),
  so one lab speaker does not dominate. A person who also appears in the test media is dropped from training.
- ``val``: one ``real_train`` speaker per ``--val-every`` speakers (held out of training, for validation).
- ``test``: ``shared/data/real/video`` (14 talking videos of 6 other people: Obama, Reagan, Andrew Ng, Fei-Fei
  Li, Kristi Noem, AOC, Katie Hill and two unnamed politicians): never trained on.

Speakers come from the ``speaker`` column of each folder's ``MANIFEST.tsv``.
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle, delimiter="\t") if row["path"].startswith("video/")]


def _key(name: str) -> str:
    """A folder-safe speaker id: lower case, runs of other characters -> '_'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "unknown"


def _person(name: str) -> str:
    """The person's name without the description in brackets, for matching across the two folders."""
    return _key(name.split("(")[0])


def build(shared: Path, dst: Path, grid_s1: int = 40, val_every: int = 8) -> dict[str, int]:
    """Write the links and filelists; returns clips per split."""
    train_rows = _rows(shared / "data" / "real_train")
    test_rows = _rows(shared / "data" / "real")
    test_people = {_person(row["speaker"]) for row in test_rows}
    s1 = [row for row in train_rows if row["speaker"] == "GRID_s1"]
    keep_s1 = {
        s1[round(i * (len(s1) - 1) / max(grid_s1 - 1, 1))]["path"] for i in range(min(grid_s1, len(s1)))
    }
    speakers = sorted({_key(r["speaker"]) for r in train_rows if _person(r["speaker"]) not in test_people})
    val_speakers = set(speakers[val_every // 2 :: val_every]) - {"grid_s1"}
    entries: list[tuple[str, Path, str, str]] = []  # (split, source, speaker, clip)
    for row in train_rows:
        speaker = _key(row["speaker"])
        if _person(row["speaker"]) in test_people or (
            row["speaker"] == "GRID_s1" and row["path"] not in keep_s1
        ):
            continue
        split = "val" if speaker in val_speakers else "train"
        entries.append((split, shared / "data" / "real_train" / row["path"], speaker, Path(row["path"]).stem))
    for row in test_rows:
        entries.append(
            ("test", shared / "data" / "real" / row["path"], _key(row["speaker"]), Path(row["path"]).stem)
        )
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for split, source, speaker, clip in entries:
        link = dst / "main" / speaker / f"{clip}.mp4"
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source.resolve())
        lists[split].append(f"{speaker}/{clip}")
    for split, names in lists.items():
        (dst / f"{split}.txt").write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    return {split: len(names) for split, names in lists.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dst", type=Path)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--grid-s1", type=int, default=40, help="GRID s1 files to keep (of 231)")
    parser.add_argument("--val-every", type=int, default=8, help="one validation speaker per this many")
    args = parser.parse_args()
    counts = build(args.shared, args.dst, args.grid_s1, args.val_every)
    print(f"{args.dst}: " + ", ".join(f"{split} {count} clips" for split, count in counts.items()))


if __name__ == "__main__":
    main()
