"""dlms_utility's oracles can fail: an association that takes any f(StoC), a meter that uses an invocation counter
twice, and one that serves an ACTION before the client's proof are each reported as a Violation by the probe."""

from __future__ import annotations

from meter_fuzz import oracle, targets
from meter_fuzz.host import dlms_utility as host

T = targets.load("dlms_utility")
probe = T.probe
from app import cosem, dlms_hls  # noqa: E402  (on the path once the target is loaded)

SEEDS = list(host.seeds())
SESSION, WRONG_PROOF = SEEDS[0], SEEDS[2]  # a head-end's session; a wrong f(StoC), then ACTIONs


def _setup():
    setup = getattr(probe, "setup", None)
    if setup is not None:
        setup()


def test_the_real_association_passes_every_seed():
    _setup()
    verdicts = [oracle.execute(T, x, slow_ms=None) for x in SEEDS]
    assert all(v.kind == "ok" for v in verdicts), [v.summary() for v in verdicts]


def test_an_association_that_takes_any_proof_is_a_violation(monkeypatch):
    _setup()
    monkeypatch.setattr(dlms_hls.Session, "answers", lambda self, f: True)
    v = oracle.execute(T, WRONG_PROOF, slow_ms=None)
    assert v.kind == "violation" and "without the client's f(StoC)" in v.message, v.summary()


def test_a_counter_used_twice_is_a_violation(monkeypatch):
    _setup()
    real = dlms_hls.Session.next

    def stuck(self):
        ic = real(self)
        self.held[16:20] = (ic).to_bytes(4, "big") if ic is not None else self.held[16:20]  # the same one again
        return ic

    monkeypatch.setattr(dlms_hls.Session, "next", stuck)
    v = oracle.execute(T, SESSION, slow_ms=None)
    assert v.kind == "violation" and "used twice" in v.message, v.summary()


def test_an_action_before_the_proof_is_a_violation(monkeypatch):
    _setup()
    real = cosem.Association.request

    def eager(self, req):
        if self.pending and req[0] == cosem.ACTION_REQUEST and req[4] == 0x46:  # class 70 while HLS is pending
            return self.sec.action(self, req)
        return real(self, req)

    monkeypatch.setattr(cosem.Association, "request", eager)
    v = oracle.execute(T, WRONG_PROOF, slow_ms=None)
    assert v.kind == "violation" and "without the proof" in v.message, v.summary()
