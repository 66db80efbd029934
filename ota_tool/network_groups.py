"""SMP group 67, "network" (firmware/app/network.py, docs/smp-groups.md), as typed smp/smpclient messages."""

from __future__ import annotations

from enum import IntEnum, unique
from typing import ClassVar

from smp import error as smperr
from smp import header as smphdr
from smp import message as smpmsg

GROUP_NETWORK = 67


@unique
class NetworkRc(IntEnum):
    """Group 67's own return codes (SMP v2 errors)."""

    OK = 0
    NOT_AUTHORISED = 1
    BAD_HEADEND = 2


class NetworkError(smperr.ErrorV2[NetworkRc]):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_NETWORK


class NetworkErrorV1(smperr.ErrorV1):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_NETWORK


# 0 status
class StatusReadRequest(smpmsg.ReadRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_NETWORK
    _COMMAND_ID: ClassVar[int] = 0


class StatusReadResponse(smpmsg.ReadResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_NETWORK
    _COMMAND_ID: ClassVar[int] = 0

    headend: dict | None = None
    next_boot: dict | None = None
    fitted: bool
    link: str
    uplinks: int
    quieted: int = 0
    last_refusal: str = ""
    modem: dict | None = None
    smp: dict | None = None
    dlms: dict | None = None


class StatusRead(StatusReadRequest):
    _Response = StatusReadResponse
    _ErrorV1 = NetworkErrorV1
    _ErrorV2 = NetworkError


# 1 headend
class HeadendReadRequest(smpmsg.ReadRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_NETWORK
    _COMMAND_ID: ClassVar[int] = 1


class HeadendReadResponse(smpmsg.ReadResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_NETWORK
    _COMMAND_ID: ClassVar[int] = 1

    headend: dict | None = None
    now: dict | None = None


class HeadendRead(HeadendReadRequest):
    _Response = HeadendReadResponse
    _ErrorV1 = NetworkErrorV1
    _ErrorV2 = NetworkError


class HeadendWriteRequest(smpmsg.WriteRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_NETWORK
    _COMMAND_ID: ClassVar[int] = 1

    headend: dict | None
    envelope: bytes | None = None


class HeadendWriteResponse(smpmsg.WriteResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_NETWORK
    _COMMAND_ID: ClassVar[int] = 1

    headend: dict | None = None
    now: dict | None = None


class HeadendWrite(HeadendWriteRequest):
    _Response = HeadendWriteResponse
    _ErrorV1 = NetworkErrorV1
    _ErrorV2 = NetworkError
