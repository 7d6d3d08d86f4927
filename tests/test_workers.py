"""Ctrl-C contract of :mod:`cemnet_core.workers`: finished work is always recorded, nothing half-recorded."""

from __future__ import annotations

import os
import signal
import time

import pytest

from cemnet_core import workers


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_run_serial_finishes_the_running_job_then_raises() -> None:
    recorded: list[tuple[int, int]] = []

    def job(value: int) -> int:
        if value == 1:
            _ctrl_c()  # lands mid-job: the job is not at a check, so it finishes and is recorded
        return value * 10

    with pytest.raises(KeyboardInterrupt):
        workers.run_serial(job, [(0,), (1,), (2,)], lambda index, result: recorded.append((index, result)))
    assert recorded == [(0, 0), (1, 10)]  # job 2 never started
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_run_serial_job_stops_at_its_check_and_writes_nothing() -> None:
    recorded: list[int] = []

    def job(value: int) -> int:
        _ctrl_c()
        workers.check_stop()  # a safe point: the job ends here
        raise AssertionError("past check_stop after Ctrl-C")

    with pytest.raises(KeyboardInterrupt):
        workers.run_serial(job, [(0,), (1,)], lambda index, result: recorded.append(index))
    assert recorded == []
    workers.check_stop()  # outside a run, a no-op again


def test_run_serial_second_ctrl_c_stops_at_once() -> None:
    def job(value: int) -> int:
        _ctrl_c()
        _ctrl_c()
        raise AssertionError("still running after the second Ctrl-C")

    with pytest.raises(KeyboardInterrupt):
        workers.run_serial(job, [(0,)], lambda index, result: None)


def test_run_pool_ctrl_c_while_recording_waits_for_the_record() -> None:
    recorded: list[tuple[int, float]] = []

    def on_result(index: int, result: float) -> None:
        _ctrl_c()  # lands between a finished job and its record: the record must still be complete
        time.sleep(0.05)
        recorded.append((index, result))

    jobs = [(float(value),) for value in range(4)]
    with pytest.raises(KeyboardInterrupt):
        workers.run_pool(abs, jobs, 2, time.sleep, (0,), on_result)
    assert recorded, "the finished job was not recorded"
    assert all(result == index for index, result in recorded)  # each record whole, none twice
    assert len({index for index, _ in recorded}) == len(recorded)
