"""Property tests (CPython, hypothesis) for the device's SMP core: whatever bytes arrive as a request packet, the
server answers with a well-formed SMP response or not at all, and never raises."""

from __future__ import annotations

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from loader import smp
from loader.os_group import OsGroup


class Ctx:
    board = {"id": "esp32_devkitc", "name": "x", "mcu": {"arch": "xtensawin"}}
    meter_id = "m"
    app_version = "0.1.0"
    mode = "development"

    def request_reset(self, force=False):
        pass


def server() -> smp.Server:
    s = smp.Server()
    OsGroup(Ctx()).register(s)
    return s


def check_response(req: bytes, rsp: bytes | None) -> None:
    if rsp is None:
        return
    assert len(rsp) >= 8
    assert rsp[0] & 7 == (req[0] & 7) + 1
    assert (rsp[0] >> 3) & 3 == (req[0] >> 3) & 3
    assert rsp[4:8] == req[4:8]
    assert (rsp[2] << 8 | rsp[3]) == len(rsp) - 8
    body = cbor2.loads(rsp[8:])
    assert isinstance(body, dict)


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_packets_never_raise(data):
    rsp = server().handle(data)
    if len(data) < 8:
        assert rsp is None
    else:
        check_response(data, rsp)


payloads = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=600, deadline=None)
@given(version=st.integers(0, 1), op=st.sampled_from([0, 2]), group=st.integers(0, 70), cmd=st.integers(0, 10),
       seq=st.integers(0, 255), payload=payloads)
def test_well_framed_requests_always_get_a_response(version, op, group, cmd, seq, payload):
    body = cbor2.dumps(payload)
    req = smp.header(version, op, len(body), group, seq, cmd) + body
    rsp = server().handle(req)
    assert rsp is not None
    check_response(req, rsp)
