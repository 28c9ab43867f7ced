"""A few calls in flight at once: results in order, never more than asked in flight, a failure stops new calls."""

from __future__ import annotations

import threading
import time

import pytest
from reengagement.concurrency import in_order


class Recorder:
    def __init__(self, fail_on: int | None = None) -> None:
        self.lock = threading.Lock()
        self.running = self.peak = 0
        self.started: list[int] = []
        self.fail_on = fail_on

    def __call__(self, item: int) -> int:
        with self.lock:
            self.started.append(item)
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.02 if item % 2 else 0.005)  # answers come back out of order
        with self.lock:
            self.running -= 1
        if item == self.fail_on:
            raise RuntimeError(f"call {item} failed")
        return item * 10


def test_results_come_in_the_items_order_with_calls_overlapping():
    call = Recorder()
    assert list(in_order(call, range(40), in_flight=4)) == [i * 10 for i in range(40)]
    assert 1 < call.peak <= 4


def test_one_in_flight_is_a_plain_map():
    call = Recorder()
    assert list(in_order(call, range(5), in_flight=1)) == [0, 10, 20, 30, 40]
    assert call.peak == 1


def test_a_failure_is_raised_after_the_results_before_it_and_no_new_call_starts():
    call = Recorder(fail_on=5)
    seen = []
    with pytest.raises(RuntimeError, match="call 5 failed"):
        for result in in_order(call, range(100), in_flight=3):
            seen.append(result)
    assert seen == [0, 10, 20, 30, 40]
    assert max(call.started) <= 5 + 2  # at most the calls already in flight with it


def test_items_are_taken_lazily():
    taken = []

    def source():
        for i in range(1000):
            taken.append(i)
            yield i

    results = in_order(lambda i: i, source(), in_flight=3)
    assert next(results) == 0 and len(taken) <= 4


def test_in_flight_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        list(in_order(str, [1], in_flight=0))
