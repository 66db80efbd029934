"""at_response's oracles can fail: a channel that grows its line buffer, a transport that delivers a datagram twice
or damaged, and a dialect that raises on a URC are each reported as a Violation by the probe."""

from __future__ import annotations

import pytest

from meter_fuzz import oracle, targets
from meter_fuzz.host import at_response as host

T = targets.load("at_response")
probe = T.probe
from app import modem, modem_at, modem_bc660k  # noqa: E402  (on the path once the target is loaded)

SEEDS = list(host.seeds())
CEREG = bytes((0, 4, 0)) + b"abcd" + b"\r\n+CEREG: 1\r\n"


def _verdicts(inputs):
    return [oracle.execute(T, x, slow_ms=None) for x in inputs]


def test_the_real_driver_passes_every_seed():
    assert all(v.kind == "ok" for v in _verdicts(SEEDS + [CEREG])), [v.summary() for v in _verdicts(SEEDS)]


def test_a_line_buffer_that_grows_is_a_violation(monkeypatch):
    real = modem_at.AtChannel.feed

    def growing(self, data, n):
        real(self, data, n)
        self.line.extend(b"\0")  # what a channel that kept overlong lines would do

    monkeypatch.setattr(modem_at.AtChannel, "feed", growing)
    v = oracle.execute(T, CEREG, slow_ms=None)
    assert v.kind == "violation" and "line buffer" in v.message


def test_a_datagram_delivered_twice_is_a_violation(monkeypatch):
    real = modem.Modem.datagram

    def twice(self, sid, size, buf, start, end):
        real(self, sid, size, buf, start, end)
        real(self, sid, size, buf, start, end)

    monkeypatch.setattr(modem.Modem, "datagram", twice)
    v = oracle.execute(T, CEREG, slow_ms=None)
    assert v.kind == "violation" and "marker" in v.message


def test_a_damaged_datagram_is_a_violation(monkeypatch):
    real = modem.Modem.datagram

    def short(self, sid, size, buf, start, end):
        real(self, sid, size - 1, buf, start, end - 1) if size else real(self, sid, size, buf, start, end)

    monkeypatch.setattr(modem.Modem, "datagram", short)
    v = oracle.execute(T, CEREG, slow_ms=None)
    assert v.kind == "violation" and "marker" in v.message


def test_a_dialect_that_raises_on_a_urc_is_a_violation(monkeypatch):
    real = modem_bc660k.Dialect.urc

    def fragile(self, buf, n):
        if modem_at.starts(buf, n, b"+CEREG: "):
            raise IndexError("a dialect bug")
        return real(self, buf, n)

    monkeypatch.setattr(modem_bc660k.Dialect, "urc", fragile)
    v = oracle.execute(T, CEREG, slow_ms=None)
    assert v.kind == "violation" and "faults" in v.message


@pytest.mark.parametrize("kind", [1, 2, 3])
def test_a_final_the_command_does_not_wait_for_is_a_violation(monkeypatch, kind):
    real = modem_at.AtChannel._line

    def eager(self, n):
        if self._pending and modem_at.starts(self.line, n, b"WHAT"):
            self._pending = False
            self.final = bytes(self.line[:n])
            return
        real(self, n)

    monkeypatch.setattr(modem_at.AtChannel, "_line", eager)
    v = oracle.execute(T, bytes((kind, 0, 0)) + b"\r\nWHAT\r\n", slow_ms=None)
    assert v.kind == "violation" and "final result" in v.message


def test_a_registration_stat_that_is_not_a_number_is_a_violation(monkeypatch):
    async def text(self, at):
        return "1"

    monkeypatch.setattr(modem_bc660k.Dialect, "registration", text)
    v = oracle.execute(T, bytes((2, 0, 0)) + b"\r\n+CEREG: 1,1\r\nOK\r\n", slow_ms=None)
    assert v.kind == "violation" and "registration stat" in v.message
