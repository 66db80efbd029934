"""SMP requests of meterkit's own management groups (64 and up; documented in docs/smp-groups.md), as typed
smp/smpclient messages so they travel through the same client as the standard groups."""

from __future__ import annotations

from enum import IntEnum, unique
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
    # what the meter reports of its image policy (an older loader sends none of them)
    mode: str | None = None
    counter: int | None = None
    max_step: int | None = None
    loader_api: int | None = None
    budget: int | None = None
    image_keys: list[bytes] | None = None
    image_keys_dev: list[bool] | None = None
    trial: dict | None = None


class MeterErrorV1(smperr.ErrorV1):
    """A group 64 error as an SMP v1 meter sends it (`{"rc": n}`): a meter without the group answers ENOTSUP so."""

    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METER


class MeterErrorV2(smperr.ErrorV2):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METER


class UpdateStatusRead(UpdateStatusReadRequest):
    _Response = UpdateStatusReadResponse
    _ErrorV1 = MeterErrorV1
    _ErrorV2 = MeterErrorV2


# Standard requests with the signed command envelope a locked meter needs (docs/smp-groups.md, "Locked meters").
class SignedStatesWrite(ImageStatesWrite):
    envelope: bytes | None = None


class SignedErase(ImageErase):
    envelope: bytes | None = None


class SignedReset(ResetWrite):
    envelope: bytes | None = None


# Group 65, metering (firmware/app/meter_group.py).
GROUP_METERING = 65


@unique
class MeteringRc(IntEnum):
    """Group 65's own return codes (SMP v2 errors; an unparametrised ErrorV2 cannot parse them)."""

    OK = 0
    NOT_READY = 1
    BAD_REFERENCE = 2
    NOT_AUTHORISED = 3
    BAD_REQUEST = 4


class MeteringError(smperr.ErrorV2[MeteringRc]):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METERING


class MeteringErrorV1(smperr.ErrorV1):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METERING


class MeterReadRequest(smpmsg.ReadRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METERING
    _COMMAND_ID: ClassVar[int] = 0


class MeterReadResponse(smpmsg.ReadResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METERING
    _COMMAND_ID: ClassVar[int] = 0

    age_ms: int
    at_ms: int
    uptime_ms: int
    front: str
    obis: dict
    md_at: int | None = None
    zone: int
    clock_known: bool
    readings: int
    saved_ms_ago: int
    saves: int
    registers: str
    calibration: str
    errors: dict


class MeterRead(MeterReadRequest):
    _Response = MeterReadResponse
    _ErrorV1 = MeteringErrorV1
    _ErrorV2 = MeteringError


class CalibrateWriteRequest(smpmsg.WriteRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METERING
    _COMMAND_ID: ClassVar[int] = 1

    step: str
    v: float
    i: float
    pf: float
    n: int
    envelope: bytes | None = None


class CalibrateWriteResponse(smpmsg.WriteResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METERING
    _COMMAND_ID: ClassVar[int] = 1

    state: str
    n: int


class CalibrateWrite(CalibrateWriteRequest):
    _Response = CalibrateWriteResponse
    _ErrorV1 = MeteringErrorV1
    _ErrorV2 = MeteringError


class CalibrationReadRequest(smpmsg.ReadRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METERING
    _COMMAND_ID: ClassVar[int] = 2


class CalibrationReadResponse(smpmsg.ReadResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METERING
    _COMMAND_ID: ClassVar[int] = 2

    source: str
    front: str
    constants: dict
    last: dict | None = None


class CalibrationRead(CalibrationReadRequest):
    _Response = CalibrationReadResponse
    _ErrorV1 = MeteringErrorV1
    _ErrorV2 = MeteringError


class ProfileReadRequest(smpmsg.ReadRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METERING
    _COMMAND_ID: ClassVar[int] = 3

    kind: str
    since: int = 0
    limit: int = 16


class ProfileReadResponse(smpmsg.ReadResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_METERING
    _COMMAND_ID: ClassVar[int] = 3

    kind: str
    held: int
    rows: list
    more: bool


class ProfileRead(ProfileReadRequest):
    _Response = ProfileReadResponse
    _ErrorV1 = MeteringErrorV1
    _ErrorV2 = MeteringError
