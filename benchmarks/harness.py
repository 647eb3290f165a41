"""Timing and reporting shared by every benchmark suite.

timeit from the standard library, with the loop count chosen by autorange and
the result the median of several repeats: the machine is shared and noisy, and
the median is robust to the slow outliers that noise produces, while the
minimum would flatter the faster contender. Ratios are computed from medians
taken in the same process, so the contenders see the same conditions.
"""

from __future__ import annotations

import statistics
import timeit
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional


@dataclass
class Case:
    """One benchmark: contenders doing the same job on the same input."""

    name: str
    contenders: Dict[str, Callable[[], object]]
    #: which contender the ratios are relative to (the first one by default)
    baseline: Optional[str] = None
    #: units of work per call (events, frames, bytes), for a per-unit column
    units: int = 1
    unit: str = "call"
    #: bytes processed per call, for a throughput column
    nbytes: int = 0
    #: targets: (faster, slower, minimum ratio) checked and printed
    targets: List[tuple] = field(default_factory=list)
    #: throughput targets: (contender, minimum MB/s) checked and printed (needs nbytes)
    throughput_targets: List[tuple] = field(default_factory=list)
    #: time targets: (contender, maximum ns per unit) checked and printed
    time_targets: List[tuple] = field(default_factory=list)
    #: lines worked out from the medians (seconds by contender), printed after the targets
    derived: Optional[Callable[[Dict[str, float]], List[str]]] = None


def median_seconds(func: Callable[[], object], repeat: int, min_time: float) -> float:
    timer = timeit.Timer(func)
    number = 1
    while True:  # autorange to at least min_time per repeat
        if timer.timeit(number) >= min_time:
            break
        number *= 4
    return statistics.median(timer.repeat(repeat=repeat, number=number)) / number


def run_case(case: Case, repeat: int, min_time: float) -> Dict[str, float]:
    results = {name: median_seconds(func, repeat, min_time) for name, func in case.contenders.items()}
    baseline = case.baseline or next(iter(case.contenders))
    print(f"\n{case.name}")
    for name, seconds in results.items():
        per_unit = seconds / case.units
        line = f"  {name:<28} {per_unit * 1e9:>12,.1f} ns/{case.unit}"
        if case.nbytes:
            line += f"  {case.nbytes / seconds / 1e6:>9,.1f} MB/s"
        line += f"  x{results[name] and results[baseline] / results[name]:>8.2f} vs {baseline}"
        print(line)
    for faster, slower, minimum in case.targets:
        if faster in results and slower in results:
            ratio = results[slower] / results[faster]
            verdict = "met" if ratio >= minimum else "NOT met"
            print(f"  target {faster} >= {minimum}x {slower}: {ratio:.1f}x, {verdict}")
        else:
            print(f"  target {faster} >= {minimum}x {slower}: not measured (contender missing)")
    for name, minimum in case.throughput_targets:
        if name in results and case.nbytes:
            speed = case.nbytes / results[name] / 1e6
            verdict = "met" if speed >= minimum else "NOT met"
            print(f"  target {name} >= {minimum:,.0f} MB/s: {speed:,.0f} MB/s, {verdict}")
        else:
            print(f"  target {name} >= {minimum:,.0f} MB/s: not measured (contender missing)")
    for name, maximum in case.time_targets:
        if name in results:
            per_unit = results[name] / case.units * 1e9
            verdict = "met" if per_unit <= maximum else "NOT met"
            print(f"  target {name} <= {maximum:,.0f} ns/{case.unit}: {per_unit:,.1f} ns, {verdict}")
        else:
            print(f"  target {name} <= {maximum:,.0f} ns/{case.unit}: not measured (contender missing)")
    if case.derived is not None:
        for line in case.derived(results):
            print(f"  {line}")
    return results
