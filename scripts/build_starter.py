"""Rebuild the starter release shipped in ``cemnet_core/starter/`` from the shared media: one command.

    CEMNET_WEIGHTS_DIR=../shared/assets .venv/bin/python scripts/build_starter.py --out starter_build \\
        [--shared ../shared] [--real-data DIR] [--figures DIR] [--device cuda] [--no-install | --card-only]

Steps, each skipped when its output is there (rerun the same command to resume):

1. **Real corpus**: ``shared/data/real_train`` + ``shared/data/real`` laid out as LRS2 with speaker-disjoint
   splits (``scripts/real_corpus.py``: train 92 clips, val 8, test 14 of 6 other people), then
   ``cemnet preprocess lrs2`` into ``OUT/real_data`` (``--real-data`` gives an already processed folder).
2. **Training**: ``cemnet_core.demo.run_demo`` with ``DemoConfig.starter`` into ``OUT/recipe``: Audio2Mouth,
   the ``small`` renderer and the lip-sync expert on the real videos; AEE, image emotion and EBM (and the
   Table IV ablations) on a procedural corpus; then the demo's corpus evaluation and video. About 1.7
   hours (5748 s, then 6 minutes more for the EBMs' corpus-tuned Audio2Mouth) on the project's two CPU
   cores with AMX, the renderer in bf16; about 2.3 hours estimated on a CPU without AMX
   (``DemoConfig.starter`` gives the steps, the times and how the result compares).
3. **Calibration**: Audio2Mouth's ``motion_gain`` from the ``val`` people, written into its release: first
   so that its landmarks open as far as theirs (:func:`cemnet_core.train.calibrate.calibrate_motion_gain`),
   then so that the rendered mouth does, each clip animated from one photo of it as ``cemnet generate``
   animates a portrait (:func:`cemnet_core.eval.mouth_gain.calibrate_rendered_gain`, about 1.5 minutes).
4. **Release**: ``OUT/recipe/weights`` copied into ``cemnet_core/starter/`` with a model card
   (``README.md``: data and licences, sizes, figures, limits), then the ``[cemnet.starter]`` entry of
   ``weights.toml`` gets the folder's new digest and size (``--no-install``: write ``OUT/starter`` only).

``--figures DIR`` fills the model card's figures from the benchmarks' JSON outputs there (the card names the
command of each): ``renderer_quality.json`` (``benchmarks/renderer_quality.py``), ``portraits.json``
(``benchmarks/portrait_generate.py``), ``generate_speed.json`` (``benchmarks/generate_throughput.py
--weights default --json``), ``a2m_articulation.json`` (``benchmarks/a2m_articulation.py --json``),
``lipsync.json`` (``benchmarks/lipsync_shift.py --expert --json``), ``results.json`` (``cemnet eval
--setting self --data OUT/real_data``).
Missing ones are marked "not measured". ``--card-only`` rewrites the installed release's card from
``--figures`` (the benchmarks run on the installed weights) and re-registers its digest, training nothing.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import re
import shutil
import sys
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from real_corpus import build as build_real_corpus  # noqa: E402

from cemnet_cli.demo_cmd import ConsoleDemoLog  # noqa: E402
from cemnet_core.bundle import MODEL_CARD, STARTER, WEIGHT_BUNDLE_LAYOUT, find_optional_release  # noqa: E402
from cemnet_core.data.manifest import read_manifest, split_records  # noqa: E402
from cemnet_core.demo import run_demo  # noqa: E402
from cemnet_core.demo_config import DemoConfig  # noqa: E402
from cemnet_core.errors import CemnetError  # noqa: E402
from cemnet_core.eval.mouth_gain import calibrate_rendered_gain  # noqa: E402
from cemnet_core.fileio import folder_digest  # noqa: E402
from cemnet_core.preprocess import preprocess  # noqa: E402
from cemnet_core.release import load_release  # noqa: E402
from cemnet_core.train.calibrate import calibrate_motion_gain  # noqa: E402

PACKAGE_FOLDER = ROOT / "cemnet_core" / "starter"
REGISTRY = ROOT / "weights.toml"
SIZE_LIMIT = 25 * 1024 * 1024  # issue #13: the shipped release stays <= 25 MB


def real_data(out: Path, shared: Path, given: Path | None, console: Console) -> Path:
    """Step 1: the processed real corpus (given, or laid out and preprocessed into ``OUT/real_data``)."""
    if given is not None:
        return given
    layout, data = out / "real_lrs2", out / "real_data"
    counts = build_real_corpus(shared, layout)
    expected = sum(counts.values())
    if (data / "manifest.jsonl").is_file() and len(read_manifest(data)) == expected:
        console.print(f"real corpus: {data} is complete ({expected} clips)")
        return data
    summary = preprocess("lrs2", layout, data, workers=2)
    console.print(f"real corpus: {summary.processed} clips processed, {summary.failed} failed")
    return data


def _data_table(data: Path, shared: Path) -> tuple[str, str]:
    """Markdown rows of the training data: clips, people and minutes per split, and the sources."""
    records = read_manifest(data)
    rows = []
    for split in ("train", "val", "test"):
        chosen = split_records(records, split)
        minutes = sum(r.num_frames / float(r.extra.get("fps", 25.0)) for r in chosen) / 60
        rows.append(f"| {split} | {len(chosen)} | {len({r.speaker for r in chosen})} | {minutes:.1f} |")
    licences: dict[str, set[str]] = {}
    for folder in ("real_train", "real"):
        manifest = shared / "data" / folder / "MANIFEST.tsv"
        if manifest.is_file():
            with manifest.open(encoding="utf-8") as handle:
                for row in csv.DictReader(handle, delimiter="\t"):
                    if row.get("path", "").startswith("video/"):
                        licence = re.sub(r"\s*\(.*", "", row.get("license") or "") or "not stated"
                        licences.setdefault(licence, set()).add(row.get("source_repo", ""))
    sources = "\n".join(
        f"- {licence}: {', '.join(sorted(r for r in repos if r))}"
        for licence, repos in sorted(licences.items())
    )
    return "\n".join(["| split | clips | people | minutes |", "|---|---|---|---|", *rows]), sources


def _sizes(weights: Path) -> str:
    rows = ["| role | kind | parameters | bytes |", "|---|---|---|---|"]
    folders = {role: weights / names[0] for role, (_, names) in WEIGHT_BUNDLE_LAYOUT.items()}
    if (syncnet := find_optional_release(weights, "syncnet")) is not None:
        folders["syncnet (LipSync judge)"] = syncnet
    for role, folder in folders.items():
        release = load_release(folder)
        count = sum(t.numel() for t in release.state_dict.values())
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        rows.append(f"| {role} | {release.kind} | {count:,} | {size:,} |")
    return "\n".join(rows)


def _figures(figures: Path | None) -> str:
    """The card's measured figures, from the benchmarks' JSON outputs in ``figures`` (module docstring)."""

    def load(name: str) -> dict | None:
        path = None if figures is None else figures / name
        return json.loads(path.read_text(encoding="utf-8")) if path is not None and path.is_file() else None

    lines = []
    renderer = load("renderer_quality.json")
    if renderer:
        lines.append("Renderer alone, true landmarks, 96 frames of the held-out test people "
                     "(`benchmarks/renderer_quality.py --data OUT/real_data --release "
                     "cemnet_core/starter/renderer`):\n")  # fmt: skip
        lines.append("| row | PSNR | SSIM | PSNR lower half | SSIM lower half |\n|---|---|---|---|---|")
        for row, v in renderer.items():
            lines.append(f"| {row} | {v['psnr']:.2f} | {v['ssim']:.3f} | {v['psnr_lower']:.2f} | "
                         f"{v['ssim_lower']:.3f} |")  # fmt: skip
    else:
        lines.append("Renderer quality: not measured (`benchmarks/renderer_quality.py`).")
    portraits = load("portraits.json")
    if portraits:
        lines.append("\n`cemnet generate` on real portraits the release never saw, driven by real speech "
                     "(`benchmarks/portrait_generate.py`): mouth opening over width, p95 - p5 "
                     "(real talking videos: 0.19-0.29); CIE Delta E 2000 of the lower face against the "
                     "photo, and across the jaw line minus the same in the photo (a seam the paste-back "
                     "left; negative: less of a step than the photo has):\n")  # fmt: skip
        lines.append("| portrait | open p95-p5 | dE lower | dE seam |\n|---|---|---|---|")
        for row in portraits["rows"]:
            lines.append(f"| {row['portrait']} | {row['open']:.3f} | {row['de_lower']:.2f} | "
                         f"{row['de_seam']:.2f} |")  # fmt: skip
    else:
        lines.append(
            "\nMouth motion and colour on portraits: not measured (`benchmarks/portrait_generate.py`)."
        )
    speed = load("generate_speed.json")
    if speed:
        ceilings = {key: speed.pop(key) for key in list(speed) if key.startswith("renderer alone")}
        lines.append("\nSpeed, a portrait + audio to the written mp4 on 2 CPU cores, model loading included "
                     "(`benchmarks/generate_throughput.py --json`): "
                     + ", ".join(f"{k}: {v:.1f} frames/s" for k, v in speed.items()))  # fmt: skip
        for key, value in ceilings.items():  # the model's limit, whatever the rest costs
            lines[-1] += f"; {key} on random inputs: {value:.1f} frames/s"
        lines[-1] += " (goal: >= 25 frames/s, faster than real time)."
    else:
        lines.append("\nSpeed: not measured (`benchmarks/generate_throughput.py`).")
    articulation = load("a2m_articulation.json")
    if articulation:
        lines.append("\nAudio2Mouth on the held-out test people, from their own audio and head pose "
                     "(`benchmarks/a2m_articulation.py`; mean over clips; copy: the first reference's "
                     "mouth held still; moved reference: the references' mouths moved with the head by the "
                     "similarity of their upper-face points, no learning, the model's start):\n")  # fmt: skip
        lines.append("| release | references | open p95-p5 | truth | correlation | M-LMD px | copy M-LMD px "
                     "| moved reference M-LMD px |")  # fmt: skip
        lines.append("|---|---|---|---|---|---|---|---|")
        for label, kinds in articulation.items():
            for kind, v in kinds.items():
                base = f"{v['base_m_lmd']:.2f}" if "base_m_lmd" in v else "-"
                cells = (f"{v['open']:.3f}", f"{v['true_open']:.3f}", f"{v['corr']:.2f}", f"{v['m_lmd']:.2f}",
                         f"{v['copy_m_lmd']:.2f}", base)  # fmt: skip
                lines.append(f"| {label} | {kind} | " + " | ".join(cells) + " |")
    lipsync = load("lipsync.json")
    if lipsync:
        trained, untrained = lipsync["summary"]["trained"], lipsync["summary"]["untrained"]
        lines.append("\nLip-sync expert (`syncnet/`, the LipSync judge) on the held-out test videos "
                     "(`benchmarks/lipsync_shift.py --expert cemnet_core/starter --data OUT/real_data`): "
                     f"true audio's offset within +-1 frame of 0 on {trained['offset_within_1_at_0']:.0%} of "
                     f"{trained['clips']} clips (untrained network {untrained['offset_within_1_at_0']:.0%}); "
                     "the shift measured from each clip's own sync point within +-1 frame in "
                     f"{trained.get('relative_within_1', float('nan')):.0%} of the shifted cases; "
                     "LSE-C of the true audio above LSE-C with the audio shifted by +-0.2 s / +-0.5 s on "
                     f"{trained['lse_c_beats_0.2s']:.0%} / {trained['lse_c_beats_0.5s']:.0%} of clips "
                     f"(untrained {untrained['lse_c_beats_0.2s']:.0%} / "
                     f"{untrained['lse_c_beats_0.5s']:.0%}).")  # fmt: skip
    else:
        lines.append("\nLip-sync expert: not measured (`benchmarks/lipsync_shift.py --expert`).")
    evaluation = load("results.json")
    if evaluation:
        config, rows = evaluation["config"], evaluation["clips"]
        people = sorted({row["speaker"] for row in rows})
        lines.append("\nSelf-reconstruction on held-out people, from audio (`cemnet eval --setting self "
                     f"--data OUT/real_data --runs {config['runs']} --max-clips {config['max_clips']}`: "
                     f"{len({row['target'] for row in rows})} test clips of {', '.join(people)}; "
                     "LSE-C/LSE-D by the expert above, in its own scale):\n")  # fmt: skip
        methods = evaluation["summary"]["self"]
        metrics = list(next(iter(methods.values())))
        lines.append("| method | " + " | ".join(metrics) + " |")
        lines.append("|---" * (len(metrics) + 1) + "|")
        for method, scores in methods.items():
            cells = ["n/a" if scores[m]["mean"] is None else f"{scores[m]['mean']:.3f}" for m in metrics]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    else:
        lines.append("\nSelf-reconstruction: not measured (`cemnet eval --setting self`).")
    return "\n".join(lines)


CARD = """# CEM-Net starter release

The weights `cemnet generate` uses when `--weights` is not given (`{name}` in `weights.toml`;
`cemnet weights show` prints this card). Trained by this project's own commands from the media in `shared/`
(`scripts/build_starter.py`, one command; recipe `DemoConfig.starter` in `cemnet_core/demo_config.py`).
Not the paper's weights, which are not public: small models, minutes of real video.

## Intended use
Research and demonstration of the CEM-Net pipeline (Sec. III of the paper): talking faces from a few
reference images and a speech clip. **Research use only**: some training videos are licensed CC BY-NC or
CC BY-NC-SA, or state no licence (below). Every video `cemnet generate` writes carries the provenance
watermark (`cemnet detect` reads it); do not remove it, and do not use the output to deceive.

## Training data
Audio2Mouth, the renderer and the lip-sync expert: real talking videos with audio, split by person (never
measured on a person trained on). `test` is `shared/data/real/video` (other people), `val` one in eight
people of `shared/data/real_train` (held out), `train` the rest (GRID speaker s1 cut to 40 of its 231 files).

{data_table}

Sources of the real videos of the three splits, by the licence their repository states:

{sources}

The emotion stages (AEE, image emotion extractor, EBM and the Table IV ablations) are trained on the
procedural corpus of `cemnet synth` ({speakers} drawn speakers, 8 emotions at 3 levels, synthetic voices):
no emotion-labelled real talking corpus (MEAD) is available here.

## Sizes
{sizes}

## Measured
{figures}

## What it cannot do
- Lip motion: Audio2Mouth places the mouth well (it follows the head's turn and scale), but follows the
  opening only weakly on people it never saw (correlation with the true opening about 0.3 in the
  Audio2Mouth figures above). Trained with L1 it opened the mouth only half as far as people do; its
  `motion_gain`, set after training from the validation people so that the mouth rendered from one photo
  of each opens as far as theirs (`cemnet_core/eval/mouth_gain.py`), scales the predicted motion to their
  range: the `@g1` rows above are the same weights without it. The gain
  widens the motion, it does not make it follow the speech better, and it costs a little M-LMD. From a
  closed-mouth portrait the renderer opens the mouth to a dark gap without teeth: no reference shows them
  (look at the portrait contact sheet). More training data and steps (a GPU) are what it needs.
- Emotion: the emotion modules have seen only drawn faces and synthetic voices; on real faces and real
  speech the emotion of the lower face is weak or wrong. The lip motion comes from Audio2Mouth, trained on
  real video.
- 128x128 face crops: the face is pasted back into the photo at that resolution (soft at high resolution).
- Minutes of training data from 50-odd people, mostly frontal: large head turns, profile views, occlusions
  and non-speech audio are out of its range.
"""


def write_card(target: Path, data: Path, shared: Path, speakers: int, figures: Path | None) -> None:
    """The model card ``target/README.md``: data and licences from ``data``, sizes of ``target``, figures."""
    data_table, sources = _data_table(data, shared)
    card = CARD.format(name=STARTER, data_table=data_table, sources=sources, speakers=speakers,
                       sizes=_sizes(target), figures=_figures(figures))  # fmt: skip
    (target / MODEL_CARD).write_text(card, encoding="utf-8")


def write_release(
    weights: Path, target: Path, data: Path, shared: Path, speakers: int, figures: Path | None
) -> None:
    """Step 3: the bundle with its model card in ``target`` (replaced), checked against the size limit."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(weights, target)
    write_card(target, data, shared, speakers, figures)
    _, size = folder_digest(target)
    if size > SIZE_LIMIT:
        raise SystemExit(f"{target} is {size / 2**20:.1f} MiB, over the {SIZE_LIMIT / 2**20:.0f} MiB limit")


def register(folder: Path) -> str:
    """Write the folder's digest and size into the ``[cemnet.starter]`` entry of weights.toml."""
    digest, size = folder_digest(folder)
    text = REGISTRY.read_text(encoding="utf-8")
    pattern = re.compile(r"(\[cemnet\.starter\]\n(?:[^\[]*?\n)?)sha256 = \"[0-9a-f]*\"\nsize = \d+")
    if not pattern.search(text):
        raise SystemExit(f"{REGISTRY} has no [cemnet.starter] entry with sha256 and size lines")
    REGISTRY.write_text(pattern.sub(lambda m: f'{m.group(1)}sha256 = "{digest}"\nsize = {size}', text),
                        encoding="utf-8")  # fmt: skip
    return digest


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="build folder (corpora, runs, weights)")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--real-data", type=Path, default=None, help="an already processed real corpus")
    parser.add_argument("--figures", type=Path, default=None, help="benchmark JSON outputs for the card")
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-install", action="store_true", help="write OUT/starter, leave the package")
    parser.add_argument("--card-only", action="store_true", help="rewrite the card from --figures only")
    args = parser.parse_args()
    console = Console()
    args.out.mkdir(parents=True, exist_ok=True)
    data = real_data(args.out, args.shared, args.real_data, console)
    config = dataclasses.replace(DemoConfig.starter(str(data.resolve())), device=args.device)
    if args.card_only:  # the weights stay; the card (and so the folder's digest) changes
        write_card(PACKAGE_FOLDER, data, args.shared, config.speakers, args.figures)
        console.print(f"rewrote {PACKAGE_FOLDER / MODEL_CARD}; weights.toml [{STARTER}] sha256 = "
                      f"{register(PACKAGE_FOLDER)}", markup=False)  # fmt: skip
        return
    result = run_demo(args.out / "recipe", config, ConsoleDemoLog(console))
    gain = calibrate_motion_gain(result.weights / "audio_to_mouth", data, "val")
    console.print(f"Audio2Mouth motion_gain = {gain} (from the val people; cemnet_core/train/calibrate.py)")
    gain = calibrate_rendered_gain(result.weights, data, "val", log=console.print)
    console.print(f"Audio2Mouth motion_gain = {gain} (rendered; cemnet_core/eval/mouth_gain.py)")
    target = args.out / "starter" if args.no_install else PACKAGE_FOLDER
    write_release(result.weights, target, data, args.shared, config.speakers, args.figures)
    if not args.no_install:
        digest = register(target)
        console.print(f"installed {target}; weights.toml [{STARTER}] sha256 = {digest}", markup=False)
    else:
        console.print(f"wrote {target} (digest {folder_digest(target)[0]})")


if __name__ == "__main__":
    try:
        main()
    except CemnetError as exc:  # Ctrl-C included (Interrupted): one line; finished steps and checkpoints stay
        Console(stderr=True).print(f"error: {exc}\nrerun the same command to resume", highlight=False)
        sys.exit(exc.exit_code)
