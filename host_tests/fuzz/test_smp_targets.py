"""The SMP targets' oracles can fail: each invariant of smp_deframe, smp_dispatch_dev and smp_dispatch_locked is
shown to catch a deliberately broken firmware stand-in (a CRC check that passes anything, a reply header with the
wrong sequence number, a UDP server that amplifies, a locked meter that obeys any envelope), and the dispatch
probes' state reset is shown to give every input the same meter."""

from __future__ import annotations

import pytest

from meter_fuzz import oracle, targets


@pytest.fixture(scope="module")
def deframe():
    return targets.load("smp_deframe")


@pytest.fixture(scope="module")
def dev():
    t = targets.load("smp_dispatch_dev")
    t.probe.setup()
    return t


@pytest.fixture(scope="module")
def locked():
    t = targets.load("smp_dispatch_locked")
    t.probe.setup()
    return t


def _record(pkt: bytes, udp: bool = False) -> bytes:
    return bytes([1 if udp else 0, len(pkt) >> 8, len(pkt) & 0xFF]) + pkt


def _packet(op: int, group: int, cmd: int, body: dict, seq: int = 5) -> bytes:
    import cbor2

    raw = cbor2.dumps(body)
    return bytes([(1 << 3) | op, 0, len(raw) >> 8, len(raw) & 0xFF, group >> 8, group & 0xFF, seq, cmd]) + raw


def _envelope(name: str) -> bytes:
    import cbor2

    from meter_fuzz.host.smp_dispatch_dev import FIXTURES

    return cbor2.loads((FIXTURES / "supply.cbor").read_bytes())[name]


def test_deframe_seeds_are_clean_and_a_decoder_that_skips_its_crc_check_is_caught(deframe, monkeypatch):
    import smp_serial

    echo = next(d for d in deframe.seed_inputs() if d[0] == 0)  # a whole packet fed at once
    assert oracle.execute(deframe, echo).kind == "ok"
    # a decoder whose CRC is computed as 0 for everything: the real packet no longer comes out
    monkeypatch.setattr(smp_serial, "crc16_xmodem", lambda data, crc=0: 0)
    v = oracle.execute(deframe, echo)
    assert v.kind == "violation" and "reference decoder" in v.message, v.summary()
    monkeypatch.undo()
    # a decoder that checks everything and then loses the frame: the packet embedded in noise must come out
    real = smp_serial.Decoder._end_line

    def loses(self):
        if real(self) is not None:
            self.frames -= 1
        return None

    monkeypatch.setattr(smp_serial.Decoder, "_end_line", loses)
    embedded = bytes([0x80, 10, 0, 0]) + bytes(range(10)) + b"noise"
    v = oracle.execute(deframe, embedded)
    assert v.kind == "violation" and "embedded" in v.message, v.summary()


def test_deframe_fragmenting_must_change_nothing(deframe, monkeypatch):
    import smp_serial

    data = bytes([0x09]) + b"".join(__import__("smp.packet", fromlist=["encode"]).encode(bytes(300)))
    assert oracle.execute(deframe, data).kind == "ok"
    real = smp_serial.Decoder.feed_bytes

    def forgetful(self, buf):  # a decoder that forgets a line begun in an earlier read
        if len(buf) < 100:
            self.reset()
        return real(self, buf)

    monkeypatch.setattr(smp_serial.Decoder, "feed_bytes", forgetful)
    v = oracle.execute(deframe, data)
    assert v.kind == "violation" and "fragments" in v.message, v.summary()


def test_dispatch_reply_header_must_match_the_request(dev, monkeypatch):
    from loader import smp

    data = _record(_packet(2, 0, 0, {"d": "hi"}))
    assert oracle.execute(dev, data).kind == "ok"
    real = smp.header
    monkeypatch.setattr(smp, "header", lambda version, op, length, group, seq, cmd: real(version, op, length, group,
                                                                                         seq + 1, cmd))
    v = oracle.execute(dev, data)
    assert v.kind == "violation" and "group/seq/command" in v.message, v.summary()


def test_dispatch_catches_a_udp_server_that_amplifies(dev, monkeypatch):
    from app import modem_smp

    status = _record(_packet(0, 66, 0, {}), udp=True)  # 12 bytes in, the supply status (~500 bytes) out
    assert oracle.execute(dev, status).kind == "ok"
    monkeypatch.setattr(modem_smp, "AMPLIFY", 100)
    v = oracle.execute(dev, status)
    assert v.kind == "violation" and "datagram from anyone" in v.message, v.summary()


def test_a_locked_meter_that_obeys_any_envelope_is_caught(locked, monkeypatch):
    from loader import commands

    relay = _record(_packet(2, 66, 1, {"action": "disconnect", "envelope": _envelope("relay_off")}))
    assert oracle.execute(locked, relay).kind == "ok"  # signed with a development key: refused, nothing changes

    def obeys(ctx, req, cmd, args, logged=True):
        return {"cmd": cmd, "args": args, "id": bytes(16), "exp": 0}

    monkeypatch.setattr(commands, "authorise", obeys)
    v = oracle.execute(locked, relay)
    assert v.kind == "violation" and "disconnect.json changed" in v.message, v.summary()


def test_every_input_meets_the_same_meter(dev):
    """A top-up changes the credit and the event log; the next input sees the meter as it was before it."""
    topup = _record(_packet(2, 66, 2, {"token": _envelope("token1")}))
    status = _record(_packet(0, 66, 0, {}))
    first = dev.probe.run(status)[0]
    assert dev.probe.run(topup)[0]["balance"] == 10000
    again = dev.probe.run(status)[0]
    assert again["credit"]["balance"] == first["credit"]["balance"] == 0
    assert again["events_seq"] == first["events_seq"]
    assert dev.probe.run(topup)[0]["balance"] == 10000  # the token is new again: its window was reset too


def test_a_request_no_listed_key_signed_must_cost_no_signature_check(locked, monkeypatch):
    """The fixed firmware refuses an envelope from an unlisted key before the trust store's root signature is
    checked; with that short-cut gone (every signer looks listed), the regression input is a finding again."""
    from loader import trust

    data = (locked.corpus_dir / "regress-unverified-envelope").read_bytes()
    assert oracle.execute(locked, data).kind == "ok"
    monkeypatch.setattr(trust, "lists", lambda keyhash: True)
    v = oracle.execute(locked, data)
    assert v.kind == "violation" and "signature verification" in v.message, v.summary()
