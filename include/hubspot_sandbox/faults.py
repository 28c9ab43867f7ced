"""Faults a test can inject per endpoint: errors, 429 bursts, latency and dropped connections."""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass, field
from typing import Any

KINDS = ("error", "rate_limit", "latency", "drop_before", "drop_after")


@dataclass
class Fault:
    """One rule: which endpoints, what happens, and how often.

    ``endpoint`` is an endpoint name such as ``lists.create`` or a glob (``lists.*``, ``*``).
    The first ``skip`` matching calls pass untouched (to hit, say, the third batch of an opt-out);
    then ``count`` fires on the next N matching calls, or else ``probability`` fires at random, from
    a seeded generator so a run can be repeated exactly.
    """

    endpoint: str
    kind: str
    count: int | None = None
    probability: float = 1.0
    status: int = 503
    seconds: float = 0.0
    seed: int = 0
    skip: int = 0
    fired: int = 0
    seen: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if not 0 <= self.probability <= 1:
            raise ValueError("probability must be between 0 and 1")
        if self.kind == "error" and not 400 <= self.status <= 599:
            raise ValueError("an error fault answers a 4xx or 5xx status")
        self._rng = random.Random(self.seed)

    def matches(self, endpoint: str) -> bool:
        return fnmatch.fnmatchcase(endpoint, self.endpoint)

    def fires(self) -> bool:
        self.seen += 1
        if self.seen <= self.skip:
            return False
        if self.count is not None:
            if self.fired >= self.count:
                return False
        elif self._rng.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def describe(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "kind": self.kind,
            "count": self.count,
            "probability": self.probability,
            "status": self.status,
            "seconds": self.seconds,
            "seed": self.seed,
            "skip": self.skip,
            "fired": self.fired,
        }


class FaultInjector:
    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)

    def clear(self) -> None:
        self.faults.clear()

    def firing(self, endpoint: str) -> list[Fault]:
        """The faults that fire for this call (each rule is consulted once per call)."""
        return [f for f in self.faults if f.matches(endpoint) and f.fires()]
