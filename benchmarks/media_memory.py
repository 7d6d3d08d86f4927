"""Memory of streamed video decoding: a 60 s clip vs a 5 s one must cost about the same (DESIGN section 2).

Decodes each clip in chunks with :func:`cemnet_core.data.media.iter_video_frames` (doing per-chunk work only,
keeping nothing) and prints the peak Python allocation (tracemalloc) and the peak RSS growth of this process.

    .venv/bin/python benchmarks/media_memory.py [--real-data ../shared/data/real]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc
from pathlib import Path

from cemnet_core.data.media import iter_video_frames, probe

LONG_CLIP = "video/edtalk__pose_source2.mp4"  # 59.96 s, 256x256, 25 fps (MANIFEST.tsv)
SHORT_CLIP = "video_silent/dreamtalk__W009_front_disgusted_level3_001.mp4"  # 5.00 s, 256x256, 25 fps


def _rss_mib() -> float:
    """Current resident set size of this process in MiB (from /proc)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(path: Path, chunk_frames: int) -> dict[str, float]:
    """Decode ``path`` in chunks; return frames, seconds, peak traced MiB and peak RSS growth in MiB."""
    rss_before = _rss_mib()
    peak_rss = rss_before
    tracemalloc.start()
    start = time.perf_counter()
    frames = 0
    checksum = 0.0
    for chunk in iter_video_frames(path, chunk_frames=chunk_frames):
        frames += len(chunk)
        checksum += float(chunk[:, ::16, ::16].mean())  # touch the data, keep nothing
        peak_rss = max(peak_rss, _rss_mib())
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "frames": frames,
        "seconds": seconds,
        "traced_peak_mib": traced_peak / 2**20,
        "rss_growth_mib": peak_rss - rss_before,
        "checksum": checksum,
    }


def main() -> None:
    """Print memory figures for the long and the short clip and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--real-data", type=Path, default=Path(os.environ.get("CEMNET_REAL_DATA", "../shared/data/real"))
    )
    parser.add_argument("--chunk-frames", type=int, default=32)
    args = parser.parse_args()
    results = {}
    # Short first, so that one-off allocations (imports, buffers) are charged to it, not to the long clip.
    for name in (SHORT_CLIP, LONG_CLIP):
        path = args.real_data / name
        info = probe(path)
        results[name] = figures = measure(path, args.chunk_frames)
        print(
            f"{name}: {info.duration:.2f} s, {figures['frames']} frames in {figures['seconds']:.2f} s; "
            f"traced peak {figures['traced_peak_mib']:.2f} MiB, "
            f"RSS growth {figures['rss_growth_mib']:.2f} MiB"
        )
    long, short = results[LONG_CLIP], results[SHORT_CLIP]
    print(
        f"ratio long/short: traced peak {long['traced_peak_mib'] / short['traced_peak_mib']:.2f}x, "
        f"RSS growth {long['rss_growth_mib']:.2f} vs {short['rss_growth_mib']:.2f} MiB, "
        f"length {long['frames'] / short['frames']:.2f}x"
    )
    print(f"peak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
