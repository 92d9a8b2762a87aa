"""How much of each kind the mix takes: the budget split by the ratio, within each pool's capacity.

A pool's capacity is its size (in samples or tokens) times its `max_repeat`. The default budget is
the largest total whose split fits every capacity. An explicit budget that does not fit is either
shrunk to that largest total (keep_ratio) or kept by giving the missing share to the other kinds
(keep_budget); either way each short pool gets a warning that says by how much.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

# Shares times totals are floats; this keeps 2.9999999 passes from counting as 2.
EPSILON = 1e-9


@dataclass(frozen=True)
class Plan:
    targets: dict[str, float]  # per mixed kind, in the unit (whole numbers for samples)
    total: float
    feasible: float  # the largest total that keeps the target ratio within every capacity
    bounded_by: str | None  # the kind whose capacity sets `feasible`
    shortfalls: dict[str, dict[str, float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def plan_mix(
    pool: Mapping[str, float],
    max_repeat: Mapping[str, int],
    shares: Mapping[str, float],
    budget: float | None,
    when_short: str,
    unit: str,
) -> Plan:
    """Targets per kind. `pool`: each kind's pool size in `unit`; `shares`: target shares (sum 1)."""
    warnings: list[str] = []
    active = {kind: share for kind, share in shares.items() if pool.get(kind, 0) > 0}
    for kind in (kind for kind in shares if kind not in active):  # recipe order: the same report every run
        warnings.append(
            f"{kind}: the pool is empty, so its target share of {shares[kind]:.1%} cannot be met; "
            "the mix is made of the other kinds at their relative ratio"
        )
    if not active:
        return Plan({}, 0, 0, None, {}, warnings)
    norm = sum(active.values())
    active = {kind: share / norm for kind, share in active.items()}
    capacity = {kind: pool[kind] * max_repeat[kind] for kind in active}
    limits = {kind: capacity[kind] / active[kind] for kind in active}
    bounded_by = min(limits, key=lambda kind: (limits[kind], kind))
    feasible = limits[bounded_by]
    whole = unit == "samples"
    if whole:
        feasible = math.floor(feasible + EPSILON)

    shortfalls: dict[str, dict[str, float]] = {}
    if budget is None or budget <= feasible + EPSILON:
        total = feasible if budget is None else budget
        targets = {kind: total * share for kind, share in active.items()}
    else:
        for kind, share in active.items():
            needed = budget * share
            if needed > capacity[kind] + EPSILON:
                short = needed - capacity[kind]
                shortfalls[kind] = {"needed": needed, "available": capacity[kind], "short": short}
                warnings.append(
                    f"{kind}: pool too small for the budget of {_amount(budget, unit)}: its share of {share:.1%} "
                    f"needs {_amount(needed, unit)}, the pool has {_amount(pool[kind], unit)} x max_repeat "
                    f"{max_repeat[kind]} = {_amount(capacity[kind], unit)}; short by {_amount(short, unit)} "
                    f"({short / needed:.0%})"
                )
        if when_short == "keep_ratio":
            total = feasible
            targets = {kind: total * share for kind, share in active.items()}
            warnings.append(
                f"the mix shrank from the budget of {_amount(budget, unit)} to {_amount(total, unit)} "
                f"to keep the ratio (when_short: keep_ratio; more {bounded_by} data or a higher max_repeat "
                "would lift it)"
            )
        else:
            targets = _fill(budget, active, capacity)
            total = sum(targets.values())
            filled = ", ".join(f"{kind} {targets[kind] / total:.1%}" for kind in sorted(targets))
            warnings.append(
                f"the other kinds filled the gap (when_short: keep_budget): realized shares {filled} differ "
                "from the target ratio"
            )
            if total < budget - EPSILON:
                warnings.append(
                    f"every pool at its max_repeat holds only {_amount(total, unit)}: the mix is short of the "
                    f"budget by {_amount(budget - total, unit)}"
                )
    if whole:
        targets = _whole(targets, {kind: math.floor(capacity[kind] + EPSILON) for kind in targets})
        total = sum(targets.values())
    return Plan(targets, total, feasible, bounded_by, shortfalls, warnings)


def _fill(budget: float, shares: Mapping[str, float], capacity: Mapping[str, float]) -> dict[str, float]:
    """Water-filling: split the budget by share; a kind over its capacity is capped and the rest is
    split again among the others by their shares."""
    targets: dict[str, float] = {}
    free = dict(shares)
    remaining = budget
    while free:
        norm = sum(free.values())
        split = {kind: remaining * share / norm for kind, share in free.items()}
        over = [kind for kind in free if split[kind] > capacity[kind] + EPSILON]
        if not over:
            targets.update(split)
            break
        for kind in over:
            targets[kind] = capacity[kind]
            remaining -= capacity[kind]
            del free[kind]
    return targets


def _whole(targets: Mapping[str, float], caps: Mapping[str, int]) -> dict[str, int]:
    """Round to whole samples keeping the total (largest remainders first), never above a cap."""
    total = round(sum(targets.values()))
    counts = {kind: min(math.floor(value + EPSILON), caps[kind]) for kind, value in targets.items()}
    by_remainder = sorted(targets, key=lambda kind: (-(targets[kind] - counts[kind]), kind))
    missing = total - sum(counts.values())
    for kind in by_remainder:
        if missing <= 0:
            break
        if counts[kind] < caps[kind]:
            counts[kind] += 1
            missing -= 1
    return counts


def _amount(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}"
