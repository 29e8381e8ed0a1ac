"""Pure helpers of ``make bench``: parsing /proc, ticks, confidence intervals.

Standard library only: imported by run.py and by workloads.py inside each
virtualenv.
"""

import math
import statistics

# Two-sided 95 % quantiles of Student's t, by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447,
       7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179,
       13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101,
       19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
       25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}


def ctxt_switches(status_text):
    """voluntary + nonvoluntary context switches of one /proc/.../status."""
    total = 0
    for line in status_text.splitlines():
        key, _, value = line.partition(':')
        if key in ('voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches'):
            total += int(value)
    return total


def tick(heartbeat_timeout_threshold, heartbeat_rate):
    """Heartbeat period of the driver: threshold / rate / 2 seconds."""
    return float(heartbeat_timeout_threshold) / heartbeat_rate / 2.0


def ratio_ci(ratios):
    """Geometric mean and 95 % t-interval of per-round ratios.

    The interval is computed on the logarithms (ratios are multiplicative)
    and mapped back; returns (mean, low, high).
    """
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), float('nan'), float('nan')
    half = T95.get(len(logs) - 1, 1.96) * statistics.stdev(logs) / math.sqrt(
        len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def told_apart(low, high):
    """False when the interval [low, high] of a ratio contains 1.0."""
    return not low <= 1.0 <= high
