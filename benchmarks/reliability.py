"""Reliability benchmark: 25 kinds of bad input and interruption, tried against the real ``cemnet`` CLI.

    CEMNET_WEIGHTS_DIR=../shared/assets CEMNET_REAL_DATA=../shared/data/real \
        .venv/bin/python benchmarks/reliability.py [--weights demo_out/weights] [--only NAME] [--keep]

Every input is made here, in a temporary folder: images and videos from one real portrait
(``$CEMNET_REAL_DATA/image/sadtalker__people_0.png``), speech from the procedural voice of ``cemnet synth``,
a tiny MEAD-layout corpus from ``cemnet synth``, and a weights bundle of tiny random release folders (as the
tests build it; ``--weights`` uses a trained one instead, e.g. the ``demo_out/weights`` of ``cemnet demo``).
Each case runs ``cemnet`` as a user would, in a child process (Ctrl-C is SIGINT to its process group, as a
terminal sends it) and is **clean** when:

- a refusal exits with the error's code and prints exactly one line on stderr (``error: ...`` or
  ``interrupted: ...``) with no traceback, no ffmpeg addresses, no ANSI codes, no ``weights_only`` advice,
  and leaves no output and no temporary file behind;
- a success exits 0, prints nothing on stderr but ``warning: ...`` lines (no third-party log noise), writes
  its output with the mode the umask gives (0644 under 022), and its last stdout line is unwrapped;
- an interruption keeps what was finished: preprocess records every clip file it wrote in ``manifest.jsonl``
  (a rerun does only the rest); training resumes at the step it stopped and ends identical to an unbroken run.

Prints one line per case and ``N/25 clean``; exits 1 unless all are clean. The disk-full and read-only
cases mount small tmpfs folders (root); without root they use a read-only folder and report disk full as
not clean. Takes about 10 minutes on 2 cores (the 60 s audio and the three training runs dominate).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reliability_kit import (  # benchmarks/ is no package
    Bench,
    mount_tmpfs,
    refused,
    succeeded,
    temps,
    unmount,
)

TRAIN = ["--set", "preset=tiny", "--set", "loop.tensorboard=false", "--set", "loop.progress=false"]


# ---------------------------------------------------------------- the cases


def case_no_face(b: Bench) -> list[str]:
    gradient = np.linspace(0, 255, 400, dtype=np.uint8)
    ref = b.image("noface.png", np.stack([np.tile(gradient, (400, 1))] * 3, axis=-1))
    return refused(
        b.generate(ref, b.speech_file, b.path("o/noface.mp4")), 2, [b.root / "o/noface.mp4"], "no face"
    )


def case_two_faces(b: Bench) -> list[str]:
    import cv2

    small = cv2.resize(b.portrait, (237, 237), interpolation=cv2.INTER_AREA)
    canvas = np.full((474, 474 + 237, 3), 255, np.uint8)
    canvas[:, :474], canvas[:237, 474:] = b.portrait, small
    out = b.path("o/two.mp4")
    run = b.generate(b.image("two.png", canvas), b.speech_file, out)
    return succeeded(b, run, out, "2 faces found; animating the largest (left")


def case_corrupt_audio(b: Bench) -> list[str]:
    data = bytearray(b.speech_file.read_bytes())
    data[:300] = np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes()
    b.path("corrupt.wav").write_bytes(bytes(data))
    run = b.generate(b.root / "portrait.png", b.root / "corrupt.wav", b.path("o/corrupt.mp4"))
    return refused(run, 2, [b.root / "o/corrupt.mp4"], "convert it")


def case_truncated_audio(b: Bench) -> list[str]:
    whole = b.media.write_audio(b.path("whole.m4a"), b.media.load_audio(b.speech_file))
    b.path("truncated.m4a").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    run = b.generate(b.root / "portrait.png", b.root / "truncated.m4a", b.path("o/trunc.mp4"))
    return refused(run, 2, [b.root / "o/trunc.mp4"], "truncated")


def case_silent_audio(b: Bench) -> list[str]:
    silent = b.media.write_audio(b.path("silent.wav"), np.zeros(32000, np.float32))
    return refused(b.generate(b.root / "portrait.png", silent, b.path("o/silent.mp4")), 2, [], "silent")


def case_short_audio(b: Bench) -> list[str]:
    short = b.speech("short.wav", 0.1)
    return refused(b.generate(b.root / "portrait.png", short, b.path("o/short.mp4")), 2, [], "at least")


def case_long_audio(b: Bench) -> list[str]:
    out = b.path("o/long.mp4")
    problems = succeeded(b, b.generate(b.root / "portrait.png", b.speech("long.wav", 60.0), out), out)
    if not problems and abs(b.media.probe(out).duration - 60.0) > 0.1:
        problems.append(f"video lasts {b.media.probe(out).duration:.2f} s, not 60")
    return problems


def _image_case(b: Bench, name: str, path: Path) -> list[str]:
    out = b.path(f"o/{name}.mp4")
    return succeeded(b, b.generate(path, b.speech_file, out), out)


def case_grayscale(b: Bench) -> list[str]:
    return _image_case(b, "gray", b.image("gray.png", b.portrait, "L"))


def case_rgba(b: Bench) -> list[str]:
    alpha = np.full(b.portrait.shape[:2], 255, np.uint8)
    alpha[:40], alpha[-40:] = 0, 0
    return _image_case(b, "rgba", b.image("rgba.png", np.dstack([b.portrait, alpha])))


def case_cmyk(b: Bench) -> list[str]:
    return _image_case(b, "cmyk", b.image("cmyk.jpg", b.portrait, "CMYK", quality=95))


def case_exif(b: Bench) -> list[str]:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: shown rotated 90 degrees clockwise
    stored = np.ascontiguousarray(np.rot90(b.portrait))  # upright only once the viewer applies the tag
    return _image_case(b, "exif", b.image("exif.jpg", stored, exif=exif.tobytes(), quality=95))


def case_8k(b: Bench) -> list[str]:
    import cv2

    canvas = np.full((4320, 7680, 3), 200, np.uint8)
    face = cv2.resize(b.portrait, (2844, 2844), interpolation=cv2.INTER_CUBIC)
    canvas[738:3582, 2418:5262] = face
    out = b.path("o/8k.mp4")
    problems = succeeded(b, b.generate(b.image("8k.png", canvas), b.speech_file, out), out)
    if not problems and b.media.probe(out).width != 1920:
        problems.append(f"output is {b.media.probe(out).width} px wide, expected 1920 (downscaled)")
    return problems


def case_vfr_video(b: Bench) -> list[str]:
    from cemnet_core.data.media import ffmpeg_exe

    frames = b.path("vfr/frames")
    frames.mkdir(exist_ok=True)
    lines = ["ffconcat version 1.0"]
    for t in range(40):
        b.image(f"vfr/frames/{t:03d}.png", np.roll(b.portrait, t % 5, axis=1))
        lines += [f"file {t:03d}.png", f"duration {0.02 + 0.04 * (t % 3):.2f}"]  # 50, 16.7 and 10 fps
    (frames / "list.txt").write_text("\n".join(lines) + "\n")
    video = b.root / "vfr/vfr.mp4"
    encode = [ffmpeg_exe(), "-v", "error", "-f", "concat", "-i", str(frames / "list.txt")]
    subprocess.run([*encode, "-fps_mode", "vfr", "-pix_fmt", "yuv420p", str(video)], check=True)
    return _image_case(b, "vfr", video)


def case_video_without_audio(b: Bench) -> list[str]:
    mute = b.talking_video("mute.mp4", 50, audio=False)
    return refused(b.generate(b.root / "portrait.png", mute, b.path("o/mute.mp4")), 2, [], "no audio")


def case_odd_paths(b: Bench) -> list[str]:
    folder = b.path("dossier à ñandú/with spaces")
    folder.mkdir(parents=True, exist_ok=True)
    ref, audio = folder / "visage été.png", folder / "voix 声.wav"
    shutil.copy(b.root / "portrait.png", ref)
    shutil.copy(b.speech_file, audio)
    out = folder / "résultat final.mp4"
    return succeeded(b, b.generate(ref, audio, out), out)


def case_read_only(b: Bench) -> list[str]:
    folder = b.root / "readonly"
    mounted = mount_tmpfs(folder, "ro,size=1m")  # root writes into chmod-555 folders
    if not mounted:
        folder.chmod(0o555)
    try:
        return refused(
            b.generate(b.root / "portrait.png", b.speech_file, folder / "x.mp4"), 5, [folder / "x.mp4"]
        )
    finally:
        unmount(folder) if mounted else folder.chmod(0o755)


def case_disk_full(b: Bench) -> list[str]:
    folder = b.root / "full"
    if not mount_tmpfs(folder, "size=1m"):
        return ["needs root to mount a 1 MB tmpfs (a real full disk)"]
    try:
        with open(folder / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
            while True:  # fill it up to the last byte
                filler.write(b"\0" * 4096)
        run = b.generate(b.root / "portrait.png", b.speech_file, folder / "x.mp4")
        return refused(run, 5, [folder / "x.mp4"], "disk is full") + [
            f"left in the full disk: {p.name}" for p in folder.iterdir() if p.name != "filler"
        ]
    finally:
        unmount(folder)


def case_missing_weights(b: Bench) -> list[str]:
    run = b.run("generate", "--ref", "portrait.png", "--audio", "speech.wav", "--weights", "nowhere")
    return refused(run, 4, [], "no weights folder")


def case_corrupted_weights(b: Bench) -> list[str]:
    damaged = b.root / "damaged"
    shutil.copytree(b.bundle, damaged)
    model = damaged / "renderer/model.safetensors"
    data = bytearray(model.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(255 - x for x in data[middle : middle + 4096])  # 4 KB flipped
    model.write_bytes(bytes(data))
    args = [
        "--ref",
        "portrait.png",
        "--audio",
        "speech.wav",
        "--out",
        "o/damaged.mp4",
        "--weights",
        str(damaged),
    ]
    return refused(b.run("generate", *args), 4, [b.root / "o/damaged.mp4"], "renderer/model.safetensors")


def _corpus(b: Bench) -> Path:
    """A tiny processed corpus (``cemnet synth`` + ``preprocess --landmarks true``), made once."""
    data = b.root / "corpus"
    if not (data / "manifest.jsonl").is_file():
        synth = ["synth", "synth", "--speakers", "4", "--sentences", "1", "--emotions", "neutral,happy"]
        b.run(*synth, "--levels", "1", "--size", "128", "-j", "1")
        b.run("preprocess", "mead", "synth", str(data), "--landmarks", "true")
    return data


def case_pickled_checkpoint(b: Bench) -> list[str]:
    import torch

    run_dir = b.root / "runs/pickled"
    trained = b.run(
        "train",
        "a2m",
        "--data",
        str(_corpus(b)),
        "--run",
        str(run_dir),
        "--device",
        "cpu",
        *TRAIN,
        "--steps",
        "1",
    )
    if trained.rc != 0:
        return [f"training for the case failed: {trained.stderr.strip()[-200:]}"]
    last = run_dir / "checkpoints/last.pt"
    torch.save({"version": 1, "models": torch.nn.Linear(2, 2)}, last)  # Python objects, not plain data
    problems = refused(b.run("export", str(run_dir), "exported"), 2, [b.root / "exported"], "pickled")
    last.write_bytes(b"\x00garbage" * 64)
    return problems + refused(
        b.run("export", str(run_dir), "exported"), 2, [b.root / "exported"], "cannot be read"
    )


def case_ctrl_c_generate(b: Bench) -> list[str]:
    out = b.path("o/stopped.mp4")
    audio = b.root / "long.wav" if (b.root / "long.wav").is_file() else b.speech("long.wav", 60.0)
    args = [
        "generate",
        "--ref",
        "portrait.png",
        "--audio",
        str(audio),
        "--out",
        str(out),
        "--weights",
        str(b.bundle),
    ]
    run = b.interrupt([*args, "--device", "cpu"], lambda: bool(temps(out.parent)))
    return refused(run, 130, [out], "Ctrl-C")


def case_ctrl_c_preprocess(b: Bench) -> list[str]:
    for index in range(6):
        b.talking_video(f"clips/talk{index}.mp4", 75, shift=7 * index)
    dst = b.root / "processed"
    manifest = dst / "manifest.jsonl"
    clip_files = lambda: sorted(p.name for p in (dst / "clips").glob("*.clip.safetensors"))  # noqa: E731
    run = b.interrupt(
        ["preprocess", "folder", "clips", str(dst), "--workers", "2"], lambda: bool(clip_files())
    )
    problems = refused(run, 130, [], "run the same command again")
    time.sleep(3.0)  # a worker that carried on would write now
    listed = sorted(
        json.loads(line)["clip_id"] + ".clip.safetensors" for line in manifest.read_text().splitlines()
    )
    if listed != clip_files():
        problems.append(f"clip files {clip_files()} but manifest lists {listed}")
    problems += [f"temp file left: {name}" for name in temps(dst)]
    again = b.run("preprocess", "folder", "clips", str(dst), "--workers", "2")
    expected = f"{6 - len(listed)} processed, {len(listed)} skipped (already done), 0 failed of 6"
    if again.rc != 0 or expected not in again.stdout or again.stderr.strip():
        problems.append(
            f"rerun: expected {expected!r}, got {again.stdout.strip()[-160:]!r} {again.stderr[-160:]!r}"
        )
    return problems


def case_ctrl_c_train(b: Bench) -> list[str]:
    import torch

    data, steps = str(_corpus(b)), "150"
    base = ["--data", data, "--device", "cpu", "--steps", steps]
    stopped, whole = b.root / "runs/stopped", b.root / "runs/whole"
    metrics = stopped / "metrics.jsonl"
    ready = lambda: metrics.is_file() and len(metrics.read_text().splitlines()) >= 20  # noqa: E731
    fresh = [*base, *TRAIN, "--set", "loop.log_every=1"]
    problems = refused(b.interrupt(["train", "a2m", "--run", str(stopped), *fresh], ready), 130, [], "resume")
    step = int(torch.load(stopped / "checkpoints/last.pt", weights_only=True)["step"])
    resumed = b.run("train", "a2m", "--run", str(stopped), *base, "--resume")
    unbroken = b.run("train", "a2m", "--run", str(whole), *fresh)
    if resumed.rc != 0 or unbroken.rc != 0:
        return [
            *problems,
            f"training failed: {resumed.stderr.strip()[-160:]} {unbroken.stderr.strip()[-160:]}",
        ]
    said = [run.stdout.strip().splitlines()[-1].split("; run folder")[0] for run in (resumed, unbroken)]
    if not 0 < step < int(steps) or said[0] != said[1]:
        problems.append(f"stopped at step {step}; resumed: {said[0]!r}, unbroken: {said[1]!r}")
    models = [torch.load(r / "checkpoints/last.pt", weights_only=True)["models"] for r in (stopped, whole)]
    same = all(torch.equal(models[0][m][k], models[1][m][k]) for m in models[1] for k in models[1][m])
    return problems + ([] if same else ["resumed run differs from the unbroken one"])


def case_bad_emotion(b: Bench) -> list[str]:
    run = b.generate(b.root / "portrait.png", b.speech_file, b.path("o/bored.mp4"), "--emotion", "bored")
    return refused(run, 2, [b.root / "o/bored.mp4"], "unknown emotion")


def case_text_as_media(b: Bench) -> list[str]:
    notes = b.path("notes.txt")
    notes.write_text("shopping list: eggs, milk\n")
    shutil.copy(notes, b.path("notes.png"))
    problems = []
    for ref, audio in (
        (notes, b.speech_file),
        (b.root / "notes.png", b.speech_file),
        (b.root / "portrait.png", notes),
    ):
        problems += refused(b.generate(ref, audio, b.path("o/notes.mp4")), 2, [b.root / "o/notes.mp4"], "; ")
    return problems


CASES: dict[str, Callable[[Bench], list[str]]] = {
    name.removeprefix("case_").replace("_", " "): function
    for name, function in globals().items()
    if name.startswith("case_")
}


def main() -> int:
    """Run every case (or ``--only``), print one line each and the tally."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="A trained bundle (default: tiny random releases).")
    parser.add_argument("--only", action="append", help="Run only the cases whose name contains this.")
    parser.add_argument("--keep", action="store_true", help="Keep the workspace and print its path.")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cemnet-reliability-"))
    bench = Bench(root, args.weights.resolve() if args.weights else None)
    chosen = {n: f for n, f in CASES.items() if not args.only or any(part in n for part in args.only)}
    clean = 0
    for name, case in chosen.items():
        began = time.perf_counter()
        try:
            problems = case(bench)
        except Exception as exc:  # a broken case is reported, not a crash of the benchmark
            problems = [f"case crashed: {type(exc).__name__}: {exc}"]
        clean += not problems
        verdict = "clean" if not problems else "NOT CLEAN: " + "; ".join(problems)
        print(f"{name:<26} {time.perf_counter() - began:6.1f} s  {verdict}", flush=True)
    print(f"{clean}/{len(chosen)} clean")
    if args.keep:
        print(f"workspace: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if clean == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
