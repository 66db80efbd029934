"""Prepaid deductions (firmware/app/credit.py) under hypothesis: however the month's energy is split into readings,
the balance is exactly what the whole energy costs under the tariff (slabs and remainders included) — no paisa
lost to truncation, none charged twice."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "meterkit" / "mpy_compat", ROOT / "firmware" / "lib", ROOT / "firmware"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from app import credit as cr  # noqa: E402

KWH = cr.MJ_PER_KWH


def exact_cost(slabs: list[tuple[int | None, int]], total_mj: int) -> Fraction:
    """The cost of `total_mj` in one month, slab by slab, as an exact fraction of a minor unit."""
    cost = Fraction(0)
    low = 0
    for upto, rate in slabs:
        top = total_mj if upto is None else min(total_mj, upto * KWH)
        if top > low:
            cost += Fraction(rate * (top - low), KWH)
        if upto is not None:
            low = max(low, upto * KWH)
    return cost


@settings(max_examples=300, deadline=None)
@given(readings=st.lists(st.integers(0, 4 * KWH), min_size=1, max_size=60),
       bounds=st.lists(st.integers(1, 200), min_size=0, max_size=3, unique=True),
       rates=st.lists(st.integers(0, 5000), min_size=4, max_size=4))
def test_any_split_of_the_energy_costs_the_same(readings: list[int], bounds: list[int], rates: list[int]) -> None:
    bounds = sorted(bounds)
    slabs = [[b, rates[k]] for k, b in enumerate(bounds)] + [[None, rates[len(bounds)]]]
    t = cr.parse_tariff({"slabs": slabs})
    led = cr.Ledger()
    for mj in readings:
        led.charge(t, mj, 1, 0)
    cost = exact_cost([(s[0], s[1]) for s in slabs], sum(readings))
    assert -led.balance == cost.numerator // cost.denominator  # whole minor units charged so far
    assert Fraction(led.rem, KWH) == cost - (-led.balance)  # and the fraction carried, exactly


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=120))
def test_each_token_id_counts_exactly_once(tids: list[int]) -> None:
    """Against a model that remembers every id: an id is accepted iff never accepted before and within the window
    of the highest accepted id."""
    from app import tokens as tk

    w = tk.TokenWindow()
    seen: set[int] = set()
    for tid in tids:
        top = max(seen, default=0)
        fresh = tid not in seen and tid > top - tk.WINDOW
        assert (w.check(tid) is None) == fresh, (tid, sorted(seen))
        if fresh:
            w.mark(tid)
            seen.add(tid)
