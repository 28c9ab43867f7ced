"""The rolling-window limiter keeps every window under HubSpot's limit, with a fake clock."""

from __future__ import annotations

from reengagement.ratelimit import RollingWindowLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def make(limit: int = 10, interval: float = 10.0, margin: int = 2) -> tuple[RollingWindowLimiter, FakeClock]:
    clock = FakeClock()
    return RollingWindowLimiter(limit, interval, margin=margin, clock=clock, sleep=clock.sleep), clock


def max_in_any_window(times: list[float], interval: float) -> int:
    return max(sum(1 for t in times if start <= t < start + interval) for start in times)


def test_allows_limit_minus_margin_then_waits_for_the_window_to_roll():
    limiter, clock = make(limit=10, margin=2)
    times = []
    for _ in range(20):
        limiter.acquire()
        times.append(clock.now)
    assert times[7] == 1000.0 and times[8] > 1000.0
    assert max_in_any_window(times, 10.0) == 8


def test_a_long_run_never_exceeds_the_limit_in_any_window_and_keeps_it_busy():
    limiter, clock = make(limit=190, margin=5)
    times = []
    for _ in range(2000):
        limiter.acquire()
        times.append(clock.now)
    assert max_in_any_window(times, 10.0) <= 185
    elapsed = times[-1] - times[0]
    # 2000 requests at 185 per 10 s need at least ~103 s; the limiter should not be much slower.
    assert elapsed <= 2000 / 185 * 10 * 1.02


def test_headers_adopt_the_portals_limit():
    limiter, _ = make(limit=10)
    limiter.observe(
        {
            "X-HubSpot-RateLimit-Max": "190",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Remaining": "150",
        }
    )
    assert (limiter.limit, limiter.interval) == (190, 10.0)


def test_low_remaining_header_slows_the_process_down():
    limiter, clock = make(limit=100, margin=5)
    limiter.observe(
        {
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Remaining": "0",
        }
    )
    start = clock.now
    limiter.acquire()
    assert clock.now > start


def test_pause_holds_requests():
    limiter, clock = make()
    limiter.pause(3.0)
    limiter.acquire()
    assert clock.now == 1003.0


def test_headers_without_rate_limit_fields_change_nothing():
    limiter, _ = make(limit=10)
    limiter.observe({"Content-Type": "application/json"})
    assert limiter.limit == 10


def test_acquire_says_when_each_request_was_admitted():
    limiter, clock = make(limit=3, interval=10.0, margin=1)
    assert [limiter.acquire() for _ in range(3)] == [1000.0, 1000.0, 1010.001]
    assert clock.now == 1010.001
