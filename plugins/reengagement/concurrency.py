"""A few HubSpot calls in flight at once, results in input order.

One call at a time keeps HubSpot's limit busy only while each answer takes less than a tenth of a
second per 18 calls; real answers take 100-300 ms. The rate limiter is shared and thread-safe, so
calls in flight together still never exceed the limit; they only stop the limit from going idle.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Calls in flight per task: enough to keep 190 calls per 10 s busy at ~250 ms per answer.
DEFAULT_IN_FLIGHT = 5


def in_order(call: Callable[[T], R], items: Iterable[T], *, in_flight: int = DEFAULT_IN_FLIGHT) -> Iterator[R]:
    """``map(call, items)`` with up to ``in_flight`` calls running at once, yielded in the items' order.

    At most ``in_flight`` items are taken from ``items`` ahead of what was yielded, so a stream stays a
    stream. The first failure is raised once the calls already running have finished; no further
    call starts after it.
    """
    if in_flight < 1:
        raise ValueError(f"in_flight must be at least 1, not {in_flight}")
    if in_flight == 1:
        yield from map(call, items)
        return
    source = iter(items)
    running: collections.deque[Future[R]] = collections.deque()
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="hubspot") as pool:
        try:
            for item in source:
                running.append(pool.submit(call, item))
                if len(running) == in_flight:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
        finally:
            for future in running:
                future.cancel()


def in_background(call: Callable[[T], R], item: T) -> Future[R]:
    """``call(item)`` in a daemon thread, as a future: a task that fails meanwhile ends without waiting for it."""
    future: Future[R] = Future()
    future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            future.set_result(call(item))
        except BaseException as error:  # noqa: BLE001 - handed to whoever reads the future
            future.set_exception(error)

    threading.Thread(target=run, name="hubspot-background", daemon=True).start()
    return future
