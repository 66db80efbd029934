import json

import fwtest
from loader import envelope

NOW = 1800000000


def _trust():
    return [{"key": bytes.fromhex(t["key"]), "roles": t["roles"], "dev": t["dev"]}
            for t in json.loads(fwtest.fixture("trust.json"))]


def _never(ident):
    return False


def _reason(raw, meter="m-1", now=NOW, used=_never, trust=None):
    try:
        envelope.open_envelope(raw, _trust() if trust is None else trust, meter, now, used)
    except envelope.EnvelopeError as e:
        return e.reason
    return None


def test_a_good_envelope_opens():
    body = envelope.open_envelope(fwtest.fixture("env_good.cbor"), _trust(), "m-1", NOW, _never)
    assert body["cmd"] == "relay" and body["args"] == {"state": "disconnect"} and body["id"] == bytes(range(16))


def test_every_refusal_has_its_reason():
    good = fwtest.fixture("env_good.cbor")
    assert _reason(good, meter="m-2") == envelope.E_METER
    assert _reason(good, now=NOW + 3601) == envelope.E_EXPIRED
    assert _reason(good, now=None) == envelope.E_TIME_UNKNOWN
    assert _reason(good, used=lambda i: i == bytes(range(16))) == envelope.E_REPLAY
    assert _reason(good, trust=[]) == envelope.E_UNKNOWN_KEY
    assert _reason(fwtest.fixture("env_wrong_role.cbor")) == envelope.E_ROLE
    assert _reason(b"\x00\x01") == envelope.E_MALFORMED
    assert _reason(b"\xa0") == envelope.E_MALFORMED


def test_any_changed_byte_is_refused():
    good = fwtest.fixture("env_good.cbor")
    for off in range(0, len(good), 3):
        bad = bytearray(good)
        bad[off] ^= 0x10
        assert _reason(bytes(bad)) is not None, off


def test_a_clock_set_works_while_the_time_is_unknown():
    assert _reason(fwtest.fixture("env_clock.cbor"), now=None) is None
