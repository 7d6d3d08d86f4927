"""Compare two videos frame by frame: how many frames differ and by how much (refactoring checks).

    python scripts/compare_videos.py A.mp4 B.mp4 [--window T]

Prints the frame counts, the number of identical frames, the largest absolute difference in 8-bit levels
and, with ``--window T``, the frames that differ grouped by window of T frames (a change to the last-window
rule shows as differences in the last window only).
"""

from __future__ import annotations

import argparse

import numpy as np

from cemnet_core.data import media


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--window", type=int, default=0, help="group differing frames by window of T frames")
    args = parser.parse_args()
    a, b = media.read_video(args.a), media.read_video(args.b)
    print(f"frames: {len(a)} vs {len(b)}")
    count = min(len(a), len(b))
    diff = np.abs(a[:count].astype(np.int16) - b[:count].astype(np.int16)).reshape(count, -1).max(axis=1)
    same = int((diff == 0).sum())
    print(f"identical frames: {same} of {count}; largest difference: {int(diff.max())} levels")
    differing = np.flatnonzero(diff)
    if differing.size:
        print(f"differing frames: {differing.tolist()}")
        if args.window:
            windows = sorted(set((differing // args.window).tolist()))
            print(f"windows of {args.window} with a difference: {windows}")


if __name__ == "__main__":
    main()
