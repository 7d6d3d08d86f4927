"""Reports of an evaluation (Table II / Table IV style): rich table, results.json, results.csv, a PNG figure.

``results.json`` holds the config (settings, runs, seeds, ablations, what each method row is), the judges
used (and which LipSync weights, if any), the sha256 of every weights file of the bundle, the summary (mean
and std over runs per setting and method) and every per-clip row; ``results.csv`` has the per-clip rows
followed by the aggregated rows (``seed`` = ``mean`` / ``std``). The table's caption and the JSON say what
each row is: CEM-Net, the Table IV ablations (w/o AEE, w/o EBM), the baselines (Audio2Mouth without
emotion, copy-the-reference) and Table II's ground-truth row; see :mod:`cemnet_core.eval.protocol`. The
table's title says what the run is (:data:`TITLE` by default; the demo says it is a protocol check on a
procedural corpus with tiny models, not a reproduction of Table II). The figure shows ground-truth vs
generated frames of one clip per method and bars of each metric.

EA has two columns: ``EA`` on the whole face (as Table II) and ``EA-low`` on the lower face, the region
the methods generate (:func:`cemnet_core.eval.protocol.score_pair`); the caption names the judge of each,
with its own accuracy on held-out ground truth where it has one, and the ground-truth row shows what the
judges give the true frames.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich import box
from rich.table import Table
from rich.text import Text

from cemnet_core.errors import OutputError
from cemnet_core.eval.protocol import METHOD_DESCRIPTIONS, METRICS, EvalResult
from cemnet_core.fileio import folder_sha256, make_folder

TITLE = "Table II protocol"  # a reproduction only when run on MEAD with the paper's models
LABELS = {"psnr": "PSNR↑", "ssim": "SSIM↑", "m_lmd": "M-LMD↓", "ea": "EA↑", "ea_lower": "EA-low↑",
          "csim": "CSIM↑", "lse_c": "LSE-C↑", "lse_d": "LSE-D↓"}  # fmt: skip
RUNS = 5  # the paper runs the evaluation on the test set five times (Sec. IV-D)


def weights_sha256(weights: str | os.PathLike[str] | None) -> dict[str, str]:
    """Relative path -> sha256 of every file under the weights folder (empty when None)."""
    if weights is None or not Path(weights).is_dir():
        return {}
    return folder_sha256(weights)


def _cell(mean: float, std: float, runs: int) -> str:
    """``mean`` (3 decimals), with ``±std`` on a second line when there were several runs: every metric
    column stays 6-7 characters wide, so the table fits an 80-column terminal."""
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.3f}" + (f"\n±{std:.3f}" if runs > 1 else "")


def method_legend(methods: list[str]) -> str:
    """One line per method: its name and what it is (:data:`METHOD_DESCRIPTIONS`)."""
    return "\n".join(f"{name}: {METHOD_DESCRIPTIONS.get(name, 'user-supplied method')}" for name in methods)


def results_table(result: EvalResult, title: str = TITLE, judges: dict[str, str] | None = None) -> Table:
    """A rich table: a section per setting, a row per method, a column per metric, mean (± std over runs);
    its caption says what each method row is (Table IV ablations and baselines) and, given ``judges``
    (metric -> the judge that scored it), which judges scored the table, so a weak one shows."""
    methods = list(dict.fromkeys(method for of_setting in result.summary.values() for method in of_setting))
    caption = method_legend(methods)
    if judges:
        caption += "\njudges: " + "; ".join(f"{metric} by {name}" for metric, name in judges.items())
    table = Table(
        title=title,
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
        padding=0,  # the box's blank divider is the one space between columns: 8 metrics fit 80 characters
    )
    table.add_column("setting / method", no_wrap=True)
    for metric in METRICS:
        table.add_column(LABELS[metric], justify="right", no_wrap=True)
    for setting, of_setting in result.summary.items():
        table.add_row(Text(setting, style="bold"))
        for index, (method, values) in enumerate(of_setting.items()):
            cells = (_cell(*values[m], len(result.seeds)) for m in METRICS)
            table.add_row(f"  {method}", *cells, end_section=index == len(of_setting) - 1)
    return table


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_results(result: EvalResult, out: str | os.PathLike[str], config: dict[str, Any]) -> dict[str, Path]:
    """Write ``results.json`` and ``results.csv`` into ``out``; returns their paths."""
    out = make_folder(out, "choose a writable --out")
    summary = {
        s: {m: {k: {"mean": v[0], "std": v[1]} for k, v in vals.items()} for m, vals in methods.items()}
        for s, methods in result.summary.items()
    }
    document = {"config": config, "seeds": result.seeds, "summary": summary, "clips": result.rows}
    json_path, csv_path = out / "results.json", out / "results.csv"
    json_path.write_text(json.dumps(_json_safe(document), indent=2) + "\n", encoding="utf-8")
    columns = ["setting", "method", "seed", "target", "reference", "speaker", "target_emotion",
               "reference_emotion", *METRICS]  # fmt: skip
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in result.rows:
            writer.writerow({key: row.get(key, "") for key in columns})
        for setting, methods in result.summary.items():
            for method, values in methods.items():
                for index, stat in enumerate(("mean", "std")):
                    writer.writerow({"setting": setting, "method": method, "seed": stat,
                                     **{m: values[m][index] for m in METRICS}})  # fmt: skip
    return {"json": json_path, "csv": csv_path}


def write_figure(
    path: str | os.PathLike[str], truth: np.ndarray, generated: dict[str, np.ndarray], result: EvalResult,
    frames: int = 4,
) -> Path:  # fmt: skip
    """PNG: row 1 ground-truth frames, one row per method's generated frames, then one bar chart per metric
    (first setting, methods side by side; bar length relative to the largest value of that metric)."""
    picks = np.linspace(0, len(truth) - 1, min(frames, len(truth))).round().astype(int)
    side = truth.shape[1]
    label_width = 150

    def strip(name: str, images: np.ndarray) -> np.ndarray:
        row = np.concatenate([images[i] for i in picks], axis=1)
        label = np.full((side, label_width, 3), 255, np.uint8)
        cv2.putText(label, name[:18], (4, side // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        return np.concatenate([label, row], axis=1)

    rows = [strip("ground truth", truth)] + [strip(name, images) for name, images in generated.items()]
    width = rows[0].shape[1]
    setting = next(iter(result.summary), None)
    if setting is not None:
        methods = result.summary[setting]
        for metric in METRICS:
            panel = np.full((18 * (len(methods) + 1), width, 3), 255, np.uint8)
            cv2.putText(
                panel, f"{LABELS[metric]} ({setting})", (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1
            )
            finite = [abs(v[metric][0]) for v in methods.values() if math.isfinite(v[metric][0])]
            top = max(finite, default=1.0) or 1.0
            for i, (method, values) in enumerate(methods.items(), start=1):
                value = values[metric][0]
                y = 18 * i
                cv2.putText(panel, method[:18], (4, y + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
                if math.isfinite(value):
                    length = int((width - label_width - 60) * abs(value) / top)
                    cv2.rectangle(
                        panel, (label_width, y + 3), (label_width + length, y + 14), (70, 110, 200), -1
                    )
                    cv2.putText(panel, f"{value:.3f}", (label_width + length + 4, y + 12),
                                cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)  # fmt: skip
            rows.append(panel)
    image = np.concatenate(rows, axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OutputError(f"cannot write {path}; choose a writable --out")
    return path


def evaluate_and_report(
    data: str | os.PathLike[str],
    weights: str | os.PathLike[str],
    out: str | os.PathLike[str],
    settings: tuple[str, ...],
    runs: int = RUNS,
    ablate: tuple[str, ...] = (),
    split: str = "test",
    max_clips: int | None = None,
    device: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    landmarks: str = "predicted",
    title: str = TITLE,
    judge_steps: int | None = None,
) -> tuple[EvalResult, Table, dict[str, Path]]:
    """The whole of ``cemnet eval``: load the bundle and judges, run the protocol, write every report.

    Returns the result, the rich table (titled ``title``) and the written paths (``json``, ``csv``,
    ``figure``); ``results.json`` records the title too.
    ``progress(done, total)`` follows the scored clips (the caller draws it); nothing here prints.
    ``judge_steps``: training steps of each corpus judge (None: :data:`protocol.JUDGE_STEPS`).
    """
    from cemnet_core.eval import protocol

    pipelines = protocol.load_pipelines(weights, ablate, baselines=True, device=device)
    judges = protocol.default_judges(data, weights, judge_steps or protocol.JUDGE_STEPS)
    result = protocol.evaluate(data, pipelines, judges, settings, runs, split, max_clips, progress, landmarks)
    config = {
        "title": title, "data": str(Path(data).resolve()), "weights": str(Path(weights).resolve()),
        "settings": list(settings),
        "runs": runs, "ablate": list(ablate), "split": split, "max_clips": max_clips, "landmarks": landmarks,
        "methods": list(pipelines),
        "method_descriptions": {m: METHOD_DESCRIPTIONS.get(m, "user-supplied method") for m in pipelines},
        "weights_sha256": weights_sha256(weights),
        "judges": {"emotion": judges.emotion.name,
                   "ea_lower": judges.emotion_lower.name if judges.emotion_lower else "none",
                   "identity": judges.identity.name,
                   "m_lmd": "true landmarks" if judges.mouth is None else judges.mouth.name,
                   "lipsync": judges.lipsync.source if judges.lipsync else "none (no <weights>/syncnet)"},
    }  # fmt: skip
    paths = write_results(result, out, config)
    if result.example_truth is not None:
        paths["figure"] = write_figure(
            Path(out) / "examples.png", result.example_truth, result.examples, result
        )
    return result, results_table(result, title, judges=config["judges"]), paths
