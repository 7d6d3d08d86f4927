"""Workspace and checks of ``benchmarks/reliability.py`` (its docstring says what *clean* means)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_throughput import make_bundle  # a sibling benchmark (benchmarks/ is no package)

PORTRAIT = "image/sadtalker__people_0.png"
NOISE = re.compile(r"Traceback|@ 0x[0-9a-f]+|\x1b\[|weights_only|InitGoogle|W0000|litert", re.IGNORECASE)


@dataclass
class Run:
    """What one ``cemnet`` call did."""

    rc: int
    stdout: str
    stderr: str


class Bench:
    """The workspace: inputs, the weights bundle and how to call ``cemnet``."""

    def __init__(self, root: Path, weights: Path | None) -> None:
        from cemnet_core.data import media

        self.root, self.media = root, media
        real = Path(os.environ.get("CEMNET_REAL_DATA", "../shared/data/real"))
        self.portrait = media.read_image(real / PORTRAIT)  # (474, 474, 3)
        script = Path(sys.executable).with_name("cemnet")
        self.cli = [str(script)] if script.is_file() else [sys.executable, "-m", "cemnet_cli.main"]
        self.env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "COLUMNS": "80"}
        self.bundle = weights if weights is not None else make_bundle(root / "weights", "tiny")
        self.image("portrait.png", self.portrait)
        self.speech_file = self.speech("speech.wav", 2.0)
        self.mode = 0o666 & ~_umask()

    # ------------------------------------------------------------ inputs

    def path(self, name: str) -> Path:
        """``name`` inside the workspace (its folder is created)."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def image(self, name: str, pixels: np.ndarray, mode: str | None = None, **save: object) -> Path:
        """Write ``pixels`` (H, W, 3|4) uint8 with Pillow, converted to ``mode``."""
        from PIL import Image

        image = Image.fromarray(pixels)
        image = image.convert(mode) if mode else image
        image.save(self.path(name), **save)
        return self.root / name

    def speech(self, name: str, seconds: float) -> Path:
        """Procedural speech (the voice of ``cemnet synth``), ``seconds`` long."""
        from cemnet_core.data import synthetic_voice as voice

        rng, parts, total = np.random.default_rng(0), [], 0
        while total < seconds * voice.SAMPLE_RATE:
            articulation = voice.articulate(voice.random_sentence(rng), voice.Voice(), voice.Prosody(), rng)
            parts.append(voice.synthesize(articulation, voice.Voice(), voice.Prosody(), rng))
            total += len(parts[-1])
        audio = np.concatenate(parts)[: round(seconds * voice.SAMPLE_RATE)]
        return self.media.write_audio(self.path(name), audio)

    def talking_video(self, name: str, frames: int, audio: bool = True, shift: int = 0) -> Path:
        """The portrait with a slow zoom, ``frames`` frames at 25 fps, with speech or without."""
        import cv2

        height, width = self.portrait.shape[:2]
        video = []
        for t in range(frames):
            scale = 1.0 + 0.03 * np.sin(2 * np.pi * (t + shift) / 50)
            matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, scale)
            video.append(
                cv2.warpAffine(self.portrait, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
            )
        sound = None
        if audio:
            sound = self.media.load_audio(self.speech(f"{name}.wav", frames / 25))
        return self.media.write_video(self.path(name), np.stack(video), audio=sound)

    # ------------------------------------------------------------ running

    def run(self, *args: str, timeout: float = 900) -> Run:
        """``cemnet ARGS`` in the workspace."""
        done = subprocess.run(
            [*self.cli, *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def interrupt(self, args: list[str], ready: Callable[[], bool], timeout: float = 600) -> Run:
        """Start ``cemnet ARGS``, send SIGINT to its process group once ``ready()``, wait for it to exit."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            process = subprocess.Popen(
                [*self.cli, *args],
                cwd=self.root,
                env=self.env,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own group, like a terminal's foreground job
                preexec_fn=lambda: signal.signal(
                    signal.SIGINT, signal.SIG_DFL
                ),  # a background shell ignores it
            )
            started = time.monotonic()
            while not ready() and process.poll() is None and time.monotonic() - started < timeout:
                time.sleep(0.05)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
            rc = process.wait(timeout=timeout)
            out.seek(0), err.seek(0)
            return Run(rc, out.read(), err.read())

    def generate(self, ref: Path | str, audio: Path | str, out: Path | str, *extra: str) -> Run:
        """``cemnet generate`` with the bench's weights."""
        args = ["--ref", str(ref), "--audio", str(audio), "--out", str(out), "--weights", str(self.bundle)]
        return self.run("generate", *args, "--device", "cpu", "--batch-size", "8", *extra)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temps(folder: Path) -> list[str]:
    """Names of temporary files (``.name.XXXX.tmp...``) left below ``folder``."""
    return sorted(p.name for p in folder.rglob(".*") if ".tmp" in p.name) if folder.is_dir() else []


def refused(run: Run, code: int, outputs: list[Path] = (), expect: str = "") -> list[str]:
    """Problems of a refusal: exit code, one clean stderr line, nothing written."""
    problems = [] if run.rc == code else [f"exit {run.rc}, expected {code}"]
    lines = run.stderr.strip().splitlines()
    if len(lines) != 1 or not lines[0].startswith(("error: ", "interrupted: ")):
        problems.append(f"stderr has {len(lines)} lines: {run.stderr.strip()[:300]!r}")
    if noise := NOISE.search(run.stderr):
        problems.append(f"noise on stderr: {noise.group(0)!r}")
    if expect and expect not in run.stderr:
        problems.append(f"message lacks {expect!r}: {run.stderr.strip()[:200]!r}")
    for out in outputs:
        if out.exists():
            problems.append(f"{out.name} was written")
        problems += [f"temp file left: {name}" for name in temps(out.parent)]
    return problems


def succeeded(bench: Bench, run: Run, out: Path, expect_warning: str = "") -> list[str]:
    """Problems of a success: exit 0, only warnings on stderr, output with the umask's mode, one line."""
    if run.rc != 0:
        return [f"exit {run.rc}: {(run.stderr.strip().splitlines() or [''])[-1][:300]}"]
    problems = [
        f"stderr line {line[:120]!r}" for line in run.stderr.splitlines() if not line.startswith("warning: ")
    ]
    if expect_warning and expect_warning not in run.stderr:
        problems.append(f"no warning with {expect_warning!r}")
    if not out.is_file():
        return [*problems, f"{out.name} missing"]
    if out.stat().st_mode & 0o777 != bench.mode:
        problems.append(f"{out.name} has mode {out.stat().st_mode & 0o777:o}, umask gives {bench.mode:o}")
    last = run.stdout.strip().splitlines()[-1:] or [""]
    if str(out) not in last[0] or "frames/s" not in last[0]:
        problems.append(f"success line wrapped or missing: {run.stdout.strip()[-200:]!r}")
    return problems


def mount_tmpfs(folder: Path, options: str) -> bool:
    """Mount a tmpfs with ``options`` (``size=1m``, ``ro``) at ``folder``; False when that is not possible."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]).returncode == 0


def unmount(folder: Path) -> None:
    """Undo :func:`mount_tmpfs`."""
    subprocess.run(["umount", str(folder)], capture_output=True)
