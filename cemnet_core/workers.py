"""Worker processes that stop cleanly on Ctrl-C, with every finished job handed back (``preprocess -j N``).

A terminal's Ctrl-C sends SIGINT to the whole process group: the main process and every worker. Left to
themselves, workers print tracebacks (while still importing) or carry on and write their current result
after the main process has given up on them, so finished work is never recorded. :func:`run_pool` does it
the other way round:

- workers start with SIGINT ignored (a disposition a spawned process inherits), so only the main process
  sees Ctrl-C;
- the main process then sets a shared stop event, cancels the jobs not started, and waits for the running
  ones. Worker code calls :func:`check_stop` at safe points (between decoded chunks, before writing its
  output): a job either stops there, writing nothing, or finishes and its result goes to ``on_result`` like
  any other. Then the ``KeyboardInterrupt`` goes on to the caller;
- a Ctrl-C that lands while the main process records a finished job (``on_result``) waits until that
  record is written, so a job's output and its record are never split by an interrupt.

:func:`run_serial` keeps the same contract in one process: Ctrl-C sets the stop event, the running job
stops at its next :func:`check_stop` or finishes and is recorded, and a second Ctrl-C stops at once.

ffmpeg children are started in their own process group (:mod:`cemnet_core.data.media`), so Ctrl-C does not
kill a decoder under a worker either: it is stopped by its owner.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any

_STOP: Any = None  # the run's stop event: in a worker of run_pool, or in this process during run_serial


class Stopped(BaseException):  # like KeyboardInterrupt: no `except Exception` may swallow it
    """Raised by :func:`check_stop` in a worker after Ctrl-C; the job ends without writing anything."""


def check_stop() -> None:
    """In a worker of :func:`run_pool`: raise :class:`Stopped` once the run is interrupted (else a no-op)."""
    if _STOP is not None and _STOP.is_set():
        raise Stopped


def _initialise(stop: Any, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    global _STOP
    _STOP = stop
    initializer(*initargs)


def _call(function: Callable[..., Any], job: tuple[Any, ...]) -> tuple[bool, Any]:
    """``(False, result)``, or ``(True, None)`` when the job stopped at a :func:`check_stop`."""
    try:
        return False, function(*job)
    except Stopped:
        return True, None


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that lands in the block until it ends, then raise it (in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT for the block (in the main thread), so processes spawned in it start ignoring it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_pool(
    function: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    workers: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
    on_result: Callable[[int, Any], None],
) -> None:
    """Run ``function(*job)`` for every job in ``workers`` spawned processes (``initializer(*initargs)`` once
    in each); ``on_result(index, result)`` runs in this process as each job finishes.

    On Ctrl-C (or an error) the running jobs are asked to stop (:func:`check_stop`) and those that finish
    anyway still reach ``on_result``; then the ``KeyboardInterrupt`` (or the error) is raised.
    """
    context = get_context("spawn")
    stop = context.Event()
    with _sigint_ignored():  # ProcessPoolExecutor spawns its workers during the first submits
        pool = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_initialise, initargs=(stop, initializer, initargs)
        )
        pending: dict[Future[tuple[bool, Any]], int] = {
            pool.submit(_call, function, job): index for index, job in enumerate(jobs)
        }
    try:
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                with _sigint_deferred():  # the job's output exists: its record must be written too
                    _stopped, result = future.result()
                    on_result(pending[future], result)
                    del pending[future]
    except BaseException:
        stop.set()
        for future in pending:
            future.cancel()
        for future, index in pending.items():  # the running jobs end at their next check_stop
            if future.cancelled():
                continue
            with contextlib.suppress(Exception):  # the first error is the one to report
                stopped, result = future.result()
                if not stopped:
                    with _sigint_deferred():
                        on_result(index, result)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_serial(
    function: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], on_result: Callable[[int, Any], None]
) -> None:
    """Run ``function(*job)`` for every job in this process, with :func:`run_pool`'s Ctrl-C contract.

    The first Ctrl-C sets the stop event that :func:`check_stop` reads: the running job stops at its next
    check (writing nothing) or finishes and reaches ``on_result``; then ``KeyboardInterrupt`` is raised. A
    second Ctrl-C raises at once.
    """
    global _STOP
    stop = threading.Event()

    def interrupt(_signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, interrupt) if main else None
    _STOP = stop
    try:
        for index, job in enumerate(jobs):
            stopped, result = _call(function, job)
            if stopped:
                break
            on_result(index, result)
            if stop.is_set():
                break
    finally:
        _STOP = None
        if main:
            signal.signal(signal.SIGINT, previous)
    if stop.is_set():
        raise KeyboardInterrupt
