"""SMP requests of meterkit's own management groups (64 and up; documented in docs/smp-groups.md), as typed
smp/smpclient messages so they travel through the same client as the standard groups."""

from __future__ import annotations

from typing import ClassVar

from smp import error as smperr
from smp import header as smphdr
from smp import message as smpmsg
from smpclient.requests.image_management import ImageErase, ImageStatesWrite
from smpclient.requests.os_management import ResetWrite

GROUP_METER = 64


class UpdateStatusReadRequest(smpmsg.ReadRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METER
    _COMMAND_ID: ClassVar[int] = 0


class UpdateStatusReadResponse(smpmsg.ReadResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METER
    _COMMAND_ID: ClassVar[int] = 0

    state: str
    reason: str
    received: int
    length: int
    image_version: str | None = None
    hash: bytes | None = None
    refused: str = ""
    boot: int | None = None


class UpdateStatusRead(UpdateStatusReadRequest):
    _Response = UpdateStatusReadResponse
    _ErrorV1 = smperr.ErrorV1
    _ErrorV2 = smperr.ErrorV2


# Standard requests with the signed command envelope a locked meter needs (docs/smp-groups.md, "Locked meters").
class SignedStatesWrite(ImageStatesWrite):
    envelope: bytes | None = None


class SignedErase(ImageErase):
    envelope: bytes | None = None


class SignedReset(ResetWrite):
    envelope: bytes | None = None
