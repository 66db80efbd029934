"""A meter that lacks one of meterkit's groups (an older firmware, a minimal server) answers its requests with an
SMP v1 error, `{"rc": 8}` (ENOTSUP): every request of groups 64-66 must decode it as its error type. With smp's
bare ErrorV1 (no group id) the decoding raised AttributeError and `ota info` ended in an internal error."""

from __future__ import annotations

import cbor2
import pytest
from smp import header as h
from smp.error import MGMT_ERR

from ota_tool import meter_groups, supply_groups


def _requests():
    for mod in (meter_groups, supply_groups):
        for name in dir(mod):
            cls = getattr(mod, name)
            if isinstance(cls, type) and hasattr(cls, "_Response") and hasattr(cls, "_ErrorV1") and \
                    cls.__module__ == mod.__name__:
                yield pytest.param(cls, id=name)


@pytest.mark.parametrize("cls", list(_requests()))
def test_a_v1_error_of_each_group_decodes(cls):
    req = cls.model_construct()
    body = cbor2.dumps({"rc": 8})
    op = h.OP.READ_RSP if req.header.op == h.OP.READ else h.OP.WRITE_RSP
    frame = bytes(h.Header(op=op, version=h.Version.V1, flags=h.Flag(0), length=len(body),
                           group_id=req.header.group_id, sequence=1, command_id=req.header.command_id)) + body
    err = req._ErrorV1.loads(frame)
    assert err.rc == MGMT_ERR.ENOTSUP and err.header.group_id == req.header.group_id
