"""Wall-clock timing shared by the benchmark scripts."""
import time
from typing import Callable, List


def run_times(fn: Callable[[], object], repeat: int, warmup: int = 2) -> List[float]:
    """Seconds of each of :obj:`repeat` calls of :obj:`fn`, after
    :obj:`warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times
