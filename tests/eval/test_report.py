"""Tests of the reports' table (cemnet_core/eval/report.py); files and figures are tested end to end in
test_protocol.py."""

from __future__ import annotations

import math

from rich.console import Console

from cemnet_core.eval.protocol import METHOD_DESCRIPTIONS, METRICS, EvalResult
from cemnet_core.eval.report import LABELS, results_table


def _result(runs: int) -> EvalResult:
    methods = list(METHOD_DESCRIPTIONS)
    summary = {
        setting: {
            method: {metric: (10.0 + i + 0.5 * j, 0.125) for j, metric in enumerate(METRICS)}
            for i, method in enumerate(methods)
        }
        for setting in ("neutral-base", "cross-emotion")
    }
    summary["cross-emotion"][methods[0]]["lse_c"] = (math.nan, math.nan)
    return EvalResult(summary=summary, seeds=list(range(runs)))


def test_table_fits_80_columns_without_cutting_a_cell() -> None:
    for runs in (1, 5):
        console = Console(width=80, record=True)
        console.print(results_table(_result(runs)))
        text = console.export_text()
        assert "…" not in text  # nothing truncated
        assert max(len(line) for line in text.splitlines()) <= 80
        for label in LABELS.values():
            assert label in text
        assert "neutral-base" in text and "cross-emotion" in text and "n/a" in text
        assert ("±0.125" in text) == (runs > 1)  # the spread only when there were several runs
        for method in METHOD_DESCRIPTIONS:
            assert f"  {method} " in text  # every method row, indented under its setting


def test_table_caption_names_the_judges() -> None:
    judges = {"emotion": "corpus expression CNN (held-out accuracy 0.27)", "m_lmd": "true landmarks"}
    caption = str(results_table(_result(1), judges=judges).caption)
    expected = "judges: emotion by corpus expression CNN (held-out accuracy 0.27); m_lmd by true landmarks"
    assert expected in caption
    assert "judges" not in str(results_table(_result(1)).caption)


def test_table_has_both_ea_columns_and_the_api_runs_five_times() -> None:
    import inspect

    from cemnet_core.eval.report import evaluate_and_report

    assert METRICS.index("ea_lower") == METRICS.index("ea") + 1  # EA on the whole face, then the lower face
    console = Console(width=80, record=True)
    console.print(results_table(_result(1), judges={"emotion": "A", "ea_lower": "B"}))
    text = console.export_text()
    assert "EA↑" in text and "EA-low↑" in text and "ea_lower by B" in text
    assert inspect.signature(evaluate_and_report).parameters["runs"].default == 5  # as `cemnet eval --runs`


def test_table_title_says_what_the_run_is() -> None:
    from cemnet_core.demo import EVAL_TITLE
    from cemnet_core.eval.report import TITLE

    assert str(results_table(_result(1)).title) == TITLE
    assert "Table II" in TITLE and "reproduction" not in TITLE  # `cemnet eval` on the user's data
    console = Console(width=80, record=True)
    console.print(results_table(_result(1), EVAL_TITLE))
    heading = " ".join(console.export_text().split("setting / method")[0].split())
    for words in ("protocol check", "procedural corpus", "tiny models", "not a reproduction of Table II"):
        assert words in heading  # the demo's table, whole, above the columns
