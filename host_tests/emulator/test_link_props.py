"""The radio link model (emulator/device/_emu_link.py) under hypothesis, on CPython; the same file runs in the VM
(test_link_vm_same_schedule): every datagram arrives 0..2 times and never before its air time and latency, a
direction never carries more than its rate, the NAT drops downlink to an expired mapping, an idle radio takes its
reconnection delay, and a seed gives one schedule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.device import _emu_link as link

DEVICE = Path(link.__file__).resolve().parent
PROFILE_NAMES = sorted(link.PROFILES)

sends = st.lists(
    st.tuples(st.sampled_from([link.UP, link.DOWN]), st.integers(0, 5_000_000), st.integers(1, 512)),
    min_size=1,
    max_size=60,
)


def _run(name: str, seed: int, plan: list[tuple[str, int, int]], **over: object) -> list[tuple]:
    p = link.profile(name)
    p.update(over)
    lk = link.Link(p, seed)
    now = 0
    out = []
    for direction, gap, size in plan:
        now += gap
        end, got = lk.send(direction, now, size)
        out.append((direction, now, size, end, got))
    return out


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PROFILE_NAMES), st.integers(0, 2**32 - 1), sends)
def test_each_datagram_arrives_zero_to_two_times_never_early(name, seed, plan):
    p = link.profile(name)
    lat_min = int(p["rtt_s"][0] * 1_000_000) // 2
    for direction, now, size, end, got in _run(name, seed, plan):
        assert len(got) <= 2
        assert got == sorted(got)
        assert end >= now + link.Link(p, 1).airtime_us(direction, size)
        for t in got:
            assert t >= end + lat_min


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([n for n in PROFILE_NAMES if n != "none"]), st.integers(0, 2**32 - 1), sends)
def test_a_direction_never_carries_more_than_its_rate(name, seed, plan):
    p = link.profile(name)
    rows = _run(name, seed, plan)
    for direction in (link.UP, link.DOWN):
        mine = [r for r in rows if r[0] == direction]
        if not mine:
            continue
        first = mine[0][1]
        kbps = p["up_kbps" if direction == link.UP else "down_kbps"]
        for k in range(len(mine)):
            sent_bits = sum(r[2] * 8 for r in mine[: k + 1])
            # air time is serial: everything up to datagram k took at least its bits at the rate
            assert (mine[k][3] - first) * kbps >= sent_bits * 1000 - 1000 * (k + 1)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 60_000_000), min_size=1, max_size=30))
def test_nat_drops_downlink_after_the_mapping_expires(seed, gaps):
    p = link.profile("none")
    p["nat_s"] = 30
    lk = link.Link(p, seed)
    now = 0
    lk.send(link.UP, now, 20, flow="f")
    last_up_end = now
    for i, gap in enumerate(gaps):
        now += gap
        if i % 3 == 2:
            last_up_end, _ = lk.send(link.UP, now, 20, flow="f")
            continue
        _, got = lk.send(link.DOWN, now, 20, flow="f")
        if now - last_up_end >= 30_000_000:
            assert got == [] and not lk.nat_open("f", now)
        else:
            assert got == [now] and lk.nat_open("f", now)
    # another flow never opened a mapping
    assert lk.send(link.DOWN, now, 20, flow="other")[1] == []


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([n for n in PROFILE_NAMES if n != "none"]),
    st.integers(0, 2**32 - 1),
    st.integers(1, 3_600_000_000),
    st.sampled_from([link.UP, link.DOWN]),
)
def test_an_idle_radio_takes_its_reconnection_delay(name, seed, idle_for, direction):
    p = link.profile(name)
    p["loss"] = 0.0
    p["reorder"] = 0.0
    lk = link.Link(p, seed)
    end0, got0 = lk.send(link.UP, 0, 10)
    assert lk.reconnects == 1  # a radio starts idle
    lo, hi = (int(x * 1_000_000) for x in p["reconnect_s"])
    assert lo <= end0 - lk.airtime_us(link.UP, 10) <= hi
    now = got0[-1] + idle_for
    before = lk.reconnects
    end, _ = lk.send(direction, now, 10)
    waited = end - lk.airtime_us(direction, 10) - now
    if idle_for >= p["idle_s"] * 1_000_000:
        assert lk.reconnects == before + 1 and lo <= waited <= hi
    else:
        assert lk.reconnects == before


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(PROFILE_NAMES), st.integers(0, 2**32 - 1), sends)
def test_same_seed_same_schedule(name, seed, plan):
    assert _run(name, seed, plan) == _run(name, seed, plan)


def test_loss_and_duplication_rates_follow_the_profile():
    rows = _run("nb1-edge", 7, [(link.DOWN, 10_000_000, 20)] * 4000)
    lost = sum(1 for r in rows if not r[4]) / len(rows)
    dup = sum(1 for r in rows if len(r[4]) == 2) / len(rows)
    assert 0.035 < lost < 0.065  # 5 %
    assert dup < 0.01
    assert _run("nb1-edge", 8, [(link.DOWN, 10_000_000, 20)] * 50) != rows[:50]  # another seed, another schedule


def test_none_is_a_plain_wire():
    rows = _run("none", 3, [(link.UP, 1000, 512), (link.DOWN, 0, 100)])
    assert [(r[3], r[4]) for r in rows] == [(1000, [1000]), (1000, [1000])]


def test_link_vm_same_schedule(tmp_path):
    """The model is MicroPython code: the VM computes the same schedule as CPython for the same seed."""
    plan = [(link.UP if i % 3 else link.DOWN, (i * 7919) % 3_000_000, 1 + (i * 131) % 512) for i in range(200)]
    want = [[r[3], r[4]] for r in _run("nb1-good", 12345, plan)]
    script = tmp_path / "t.py"
    script.write_text(
        "import json\nimport _emu_link as link\n"
        f"plan = {json.dumps(plan)}\n"
        "lk = link.Link(link.profile('nb1-good'), 12345)\nnow = 0\nout = []\n"
        "for d, gap, size in plan:\n    now += gap\n    end, got = lk.send(d, now, size)\n    out.append([end, got])\n"
        "print(json.dumps(out))\n"
    )
    exe = Path(sys.executable).with_name("micropython")
    p = subprocess.run(
        [str(exe), str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, MICROPYPATH=f"{DEVICE}:.frozen"),
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == want


def test_scenario_files_take_link_keys_checked_like_ctl_set():
    import pytest

    from emulator import grid, radio
    from emulator.errors import ControlError

    sc = grid.parse_scenario(
        {
            "steps": [
                {"at": 0, "set": {"link.profile": "nb1-good"}},
                {"at": 60, "set": {"link.loss": 0.2, "link.nat": "on", "load.current": 5}},
            ]
        },
        "day.json",
        radio.SCENARIO_KEYS,
    )
    assert sc["steps"] == [
        [0, {"link.profile": "nb1-good"}],
        [60_000_000, {"link.loss": 0.2, "link.nat": 30, "load.current": 5.0}],
    ]
    with pytest.raises(ControlError, match=r"^day.json: steps\[0\].set: link.loss: .*'nan'"):
        grid.parse_scenario({"steps": [{"at": 0, "set": {"link.loss": "nan"}}]}, "day.json", radio.SCENARIO_KEYS)
    with pytest.raises(ControlError, match=r"^day.json: steps\[0\].set.link.jitter: unknown key"):
        grid.parse_scenario({"steps": [{"at": 0, "set": {"link.jitter": 1}}]}, "day.json", radio.SCENARIO_KEYS)
    # the host's settings and the VM's scenario steps build the parameters by one rule
    assert radio.params({"link.profile": "nb1-good", "link.loss": 0.2}) == link.apply_setting(
        link.profile("nb1-good"), "link.loss", 0.2
    )
