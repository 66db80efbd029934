"""Top-up tokens under hypothesis (firmware/app/credit_store.py, tokens.py): no sequence of top-ups, credit resets
(to any balance and any last token id, forced or after damage) and reboots makes a token id the meter has accepted
acceptable again."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "meterkit" / "mpy_compat", ROOT / "firmware" / "lib", ROOT / "firmware"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from app import credit_store, tokens  # noqa: E402

TID = st.integers(1, 200)
OPS = st.lists(st.one_of(
    st.tuples(st.just("topup"), TID),
    st.tuples(st.just("reset"), st.integers(0, 220)),  # the head-end's last token id, stale or not
    st.tuples(st.just("reboot"), st.just(0)),  # the record read back from the flash
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(ops=OPS)
def test_no_sequence_of_commands_reopens_a_spent_token(ops):
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        try:
            os.mkdir("meter")
            s = credit_store.CreditStore()
            s.load()
            spent: set[int] = set()
            floor = 0  # every tid up to the highest reset's id counts as spent too
            for op, arg in ops:
                if op == "topup":
                    if s.topup(arg, 100) is None:
                        assert arg not in spent and arg > floor, f"token {arg} was accepted twice"
                        spent.add(arg)
                elif op == "reset":
                    s.reset(0, arg)  # what the group does after its checks (damaged record, or signed force)
                    floor = max(floor, arg)
                else:
                    s = credit_store.CreditStore()
                    assert s.load() is None
                for tid in spent | set(range(1, floor + 1)):
                    assert s.tokens.check(tid) is not None, f"token {tid} acceptable again after {op} {arg}"
        finally:
            os.chdir(cwd)


@given(top=st.integers(0, 300), used=st.integers(0, tokens.MASK), tid=st.integers(0, 400))
def test_spending_up_to_an_id_never_moves_the_window_back(top, used, tid):
    w = tokens.TokenWindow()
    w.top, w.used = top, (used if top else 0)
    before = {t for t in range(1, top + 1) if w.check(t) is not None}
    w.spend_up_to(tid)
    assert w.top == max(top, tid)
    after = {t for t in range(1, max(top, tid) + 1) if w.check(t) is not None}
    assert before <= after and set(range(1, tid + 1)) <= after
