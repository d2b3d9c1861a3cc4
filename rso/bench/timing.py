"""Small timing helpers: repeat a call, keep every duration, report median and p95."""
from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Sample:
    seconds: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))] * 1000


def repeat(fn: Callable[[int], object], times: int, warmup: int = 1) -> Sample:
    """Call ``fn(i)`` ``times`` times after ``warmup`` unmeasured calls."""
    for i in range(warmup):
        fn(-1 - i)
    sample = Sample()
    for i in range(times):
        t0 = time.perf_counter()
        fn(i)
        sample.seconds.append(time.perf_counter() - t0)
    return sample


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
