"""dlms_set's oracles can fail: a SET that persists a time zone the next start would refuse, one that writes the
settings and then answers a refusal, and a limiter SET that answers done while the supply keeps its old limit are
each reported as a Violation by the probe; the real SET passes every seed."""

from __future__ import annotations

from meter_fuzz import oracle, targets
from meter_fuzz.host import dlms_set as host

T = targets.load("dlms_set")
probe = T.probe
from app import cosem, dlms_supply, meter_settings  # noqa: E402  (on the path once the target is loaded)
from loader import store  # noqa: E402

SEEDS = list(host.seeds())
ZONE = next(x for x in SEEDS if x[0] == host.TYPED | 1 and x[2:4] == b"\x00\x00")  # UTC: the meter's is +05:30
LIMIT = next(x for x in SEEDS if x[0] == host.TYPED | 2 and x[2:6] == (3000).to_bytes(4, "big"))


def test_the_real_set_passes_every_seed():
    probe.setup()
    verdicts = [oracle.execute(T, x, slow_ms=None) for x in SEEDS]
    assert all(v.kind == "ok" for v in verdicts), [v.summary() for v in verdicts if v.kind != "ok"]
    assert probe.run(ZONE) == [0] and probe.run(LIMIT) == [0]  # (the seeds reach SETs done, files written)


def test_a_zone_the_next_start_would_refuse_is_a_violation(monkeypatch):
    probe.setup()

    def careless(new):
        raw = store.read_json(meter_settings.PATH, {})
        raw["tz_offset_min"] = 9999  # past the calendar's -720..840: the next start runs on the defaults
        store.write_json(meter_settings.PATH, raw)

    monkeypatch.setattr(meter_settings, "save_calendar", careless)
    v = oracle.execute(T, ZONE, slow_ms=None)
    assert v.kind == "violation" and "next start would not use" in v.message, v.summary()


def test_a_refused_set_that_wrote_is_a_violation(monkeypatch):
    probe.setup()
    real = dlms_supply.put

    def writes_then_refuses(supply, cls, attr, data, tz):
        real(supply, cls, attr, data, tz)
        return cosem.OTHER_REASON

    monkeypatch.setattr(dlms_supply, "put", writes_then_refuses)
    v = oracle.execute(T, ZONE, slow_ms=None)
    assert v.kind == "violation" and "changed the meter's files" in v.message, v.summary()


def test_a_limit_done_but_not_taken_is_a_violation(monkeypatch):
    probe.setup()
    monkeypatch.setattr(probe.METER.supply, "configure", lambda raw, detail="": None)  # answers 0, keeps the old
    v = oracle.execute(T, LIMIT, slow_ms=None)
    assert v.kind == "violation" and "threshold_w" in v.message, v.summary()
