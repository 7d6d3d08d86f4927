"""The console side of core's progress callbacks: rich bars with a rate and an ETA (STYLE section 8).

Core never draws; its long functions take a callback (``progress(done, total)``, the training loop's
:class:`~cemnet_core.train.loop.TrainProgress` events, the demo's :class:`~cemnet_core.demo.DemoLog`).
The commands turn those into what the user sees with the helpers here:

    count_bar(label, unit)   -> progress(done, total)        synth, preprocess, eval, generate
    step_bars(unit)          -> progress(step, done, total)  the demo's preprocess step
    train_bar()              -> progress(TrainProgress)       train
    ConsoleDemoLog(console)  -> the demo's step headings and lines
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cemnet_core.train.loop import TrainProgress

CountCallback = Callable[[int, int], None]
LOG_EVERY_S = 60.0  # most seconds between count_bar's log lines when the console is not a terminal


@contextlib.contextmanager
def count_bar(
    label: str,
    unit: str | None = None,
    *,
    digits: int = 1,
    transient: bool = True,
    console: Console | None = None,
    rate_from_first_report: bool = False,
    terminal_only: bool = False,
) -> Iterator[CountCallback]:
    """A bar ``label [====] done/total [rate unit/s] ETA`` during the block; yields ``progress(done, total)``.

    ``unit`` None leaves out the rate column. The rate counts from the start of the block, or with
    ``rate_from_first_report`` from the first report (generation's first report follows the model load).
    On a console that is not a terminal (a log file, a pipe) rich draws no bar, so a plain line
    ``label: done/total, rate unit/s, elapsed`` is printed instead at every tenth of the total and at least
    every :data:`LOG_EVERY_S` seconds; ``terminal_only``: print nothing there.
    """
    columns: list[Any] = [TextColumn(label), BarColumn(), MofNCompleteColumn()]
    if unit is not None:
        columns.append(TextColumn(f"{{task.fields[rate]:.{digits}f}} {unit}/s"))
    columns.append(TimeRemainingColumn())
    console = console or Console()
    started: list[float] = [] if rate_from_first_report else [time.perf_counter()]
    lines = not console.is_terminal  # no bar can be drawn: log lines (or nothing, terminal_only)
    logged = {"done": -1, "time": time.perf_counter()}
    with Progress(*columns, transient=transient, console=console, disable=lines) as bar:
        task = bar.add_task(label, total=None, rate=0.0)

        def report(done: int, total: int) -> None:
            now = time.perf_counter()
            if not started:
                started.append(now)
            rate = done / max(now - started[0], 1e-6) if done else 0.0
            bar.update(task, completed=done, total=total, rate=rate)
            tenth = max(total // 10, 1)
            due = done // tenth > logged["done"] // tenth or now - logged["time"] >= LOG_EVERY_S
            if lines and not terminal_only and done > logged["done"] and (due or done >= total):
                speed = f", {rate:.{digits}f} {unit}/s" if unit is not None else ""
                console.print(f"{label}: {done}/{total}{speed}, {now - started[0]:.0f} s", highlight=False)
                logged.update(done=done, time=now)

        yield report


@contextlib.contextmanager
def step_bars(unit: str = "clips", digits: int = 2) -> Iterator[Callable[[str, int, int], None]]:
    """A :func:`count_bar` per named step, kept on screen: ``progress(step, done, total)`` opens the bar of
    ``step`` on its first report and closes it when ``done`` reaches ``total``."""
    open_bars: dict[str, tuple[contextlib.ExitStack, CountCallback]] = {}

    def report(step: str, done: int, total: int) -> None:
        if step not in open_bars:
            stack = contextlib.ExitStack()
            open_bars[step] = (
                stack,
                stack.enter_context(count_bar(step, unit, digits=digits, transient=False)),
            )
        open_bars[step][1](done, total)
        if done >= total:
            open_bars.pop(step)[0].close()

    try:
        yield report
    finally:
        for stack, _ in open_bars.values():
            stack.close()


@contextlib.contextmanager
def train_bar(console: Console | None = None) -> Iterator[Callable[[TrainProgress], None]]:
    """The training bar ``train [====] step/steps loss L R it/s ETA``; yields the loop's progress callback.

    The loss shown is the first logged training metric (each stage logs its total loss first). The bar
    starts with the first event: a run with ``loop.progress=false``, or a torchrun process other than rank
    0, gets no events and draws nothing. On a console that is not a terminal a plain line
    ``train: step/total, loss L, R it/s`` is printed at most every :data:`LOG_EVERY_S` seconds and at the end.
    """
    columns = (
        TextColumn("[bold]train[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[rate]} it/s"),
        TimeRemainingColumn(),
    )
    console = console or Console()
    bar = Progress(*columns, console=console, disable=not console.is_terminal)
    task = bar.add_task("train", total=None, loss="-", rate="-")
    logged = {"time": time.perf_counter()}

    def report(event: TrainProgress) -> None:
        if not bar.live.is_started:
            bar.start()
        fields: dict[str, str] = {}
        if event.metrics:
            fields["loss"] = f"{next(iter(event.metrics.values())):.4g}"
        if event.rate is not None:
            fields["rate"] = f"{event.rate:.2f}"
        bar.update(task, completed=event.step, total=event.total, **fields)
        now = time.perf_counter()
        if not console.is_terminal and (now - logged["time"] >= LOG_EVERY_S or event.step >= event.total):
            loss, rate = fields.get("loss", "-"), fields.get("rate", "-")
            console.print(f"train: {event.step}/{event.total}, loss {loss}, {rate} it/s", highlight=False)
            logged["time"] = now

    try:
        yield report
    finally:
        if bar.live.is_started:
            bar.stop()


class ConsoleDemoLog:
    """The demo's log drawn on a rich console: a rule per step (``N/M`` in bold), plain lines under it."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def rule(self, title: str) -> None:
        """A step heading, e.g. ``3/12 preprocess it (...)``."""
        number, _, rest = title.partition(" ")
        self.console.rule(f"[bold]{number}[/] {rest}", align="left")

    def print(self, item: Any) -> None:
        """A line of text, or a rich renderable (the evaluation's table)."""
        self.console.print(item, highlight=False)
