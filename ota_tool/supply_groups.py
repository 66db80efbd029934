"""SMP group 66, "supply" (firmware/app/supply_group.py, docs/smp-groups.md), as typed smp/smpclient messages."""

from __future__ import annotations

from enum import IntEnum, unique
from typing import ClassVar

from smp import error as smperr
from smp import header as smphdr
from smp import message as smpmsg

GROUP_SUPPLY = 66


@unique
class SupplyRc(IntEnum):
    """Group 66's own return codes (SMP v2 errors)."""

    OK = 0
    NOT_AUTHORISED = 1
    TOKEN_REFUSED = 2
    BAD_SETTINGS = 3
    NO_CREDIT = 4
    BAD_REQUEST = 5
    NOT_ALLOWED = 6


class SupplyError(smperr.ErrorV2[SupplyRc]):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY


class SupplyErrorV1(smperr.ErrorV1):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY


# 0 status
class StatusReadRequest(smpmsg.ReadRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 0


class StatusReadResponse(smpmsg.ReadResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 0

    mode: int
    state: int
    output: bool
    reason: str
    relay: dict
    clock_known: bool
    rtc: int | None = None
    clock: dict
    credit: dict | None = None
    load_limit: dict
    events_seq: int
    presses: int
    last_refusal: str
    cover: dict | None = None  # {open, openings}; null on a board without a cover switch


class StatusRead(StatusReadRequest):
    _Response = StatusReadResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


# 1 relay
class RelayWriteRequest(smpmsg.WriteRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 1

    action: str
    envelope: bytes | None = None


class RelayWriteResponse(smpmsg.WriteResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 1

    transition: str
    state: int
    output: bool


class RelayWrite(RelayWriteRequest):
    _Response = RelayWriteResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


# 2 top-up
class TopupWriteRequest(smpmsg.WriteRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 2

    token: bytes


class TopupWriteResponse(smpmsg.WriteResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 2

    tid: int
    amount: int
    balance: int
    state: int
    output: bool


class TopupWrite(TopupWriteRequest):
    _Response = TopupWriteResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


# 3 settings
class SettingsReadRequest(smpmsg.ReadRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 3


class SettingsReadResponse(smpmsg.ReadResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 3

    settings: dict


class SettingsRead(SettingsReadRequest):
    _Response = SettingsReadResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


class SettingsWriteRequest(smpmsg.WriteRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 3

    settings: dict
    envelope: bytes | None = None


class SettingsWriteResponse(smpmsg.WriteResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 3

    settings: dict


class SettingsWrite(SettingsWriteRequest):
    _Response = SettingsWriteResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


# 4 clock
class ClockWriteRequest(smpmsg.WriteRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 4

    time: int
    envelope: bytes | None = None


class ClockWriteResponse(smpmsg.WriteResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 4

    time: int
    drift_s: int | None = None
    clock: dict


class ClockWrite(ClockWriteRequest):
    _Response = ClockWriteResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


# 5 events
# the values of a read's `log`: IS 15959's event categories, in the order of their code ranges (1-50 voltage ...
# 301-350 control), of the meter's compartments (firmware/app/event_logs.py) and of its DLMS event profiles
# (0.0.99.98.0-6.255)
LOGS = ("voltage", "current", "power", "transaction", "other", "non-rollover", "control")


class EventsReadRequest(smpmsg.ReadRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 5

    since: int = 0
    limit: int = 16
    log: int | None = None  # one IS 15959 category's compartment (0-6); none: the ring of every kind


class EventsReadResponse(smpmsg.ReadResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 5

    events: list
    seq: int
    log: int | None = None
    total: int | None = None  # a compartment's: events it has logged
    depth: int | None = None  # and how many it keeps


class EventsRead(EventsReadRequest):
    _Response = EventsReadResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


# 6 emergency credit
class EmergencyWriteRequest(smpmsg.WriteRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 6

    envelope: bytes | None = None


class EmergencyWriteResponse(smpmsg.WriteResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 6

    balance: int


class EmergencyWrite(EmergencyWriteRequest):
    _Response = EmergencyWriteResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


# 7 credit reset (after a damaged credit record)
class CreditResetWriteRequest(smpmsg.WriteRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 7

    balance: int
    top_tid: int
    force: bool | None = None  # sent only when set: a healthy credit record is reset only with a signed force
    envelope: bytes | None = None


class CreditResetWriteResponse(smpmsg.WriteResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 7

    balance: int
    top_tid: int


class CreditResetWrite(CreditResetWriteRequest):
    _Response = CreditResetWriteResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


# 8 calendar: the local time offset and the TOU zone tables the tariff's TOU rates follow
class CalendarReadRequest(smpmsg.ReadRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 8


class CalendarReadResponse(smpmsg.ReadResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 8

    calendar: dict


class CalendarRead(CalendarReadRequest):
    _Response = CalendarReadResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


class CalendarWriteRequest(smpmsg.WriteRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 8

    calendar: dict
    envelope: bytes | None = None


class CalendarWriteResponse(smpmsg.WriteResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 8

    calendar: dict


class CalendarWrite(CalendarWriteRequest):
    _Response = CalendarWriteResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


# 9 reader: the DLMS meter reader's secret (IS 15959's LLS association, client SAP 32): set or not; its SHA-256 set
# (32 bytes) or cleared (empty)
class ReaderReadRequest(smpmsg.ReadRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 9


class ReaderReadResponse(smpmsg.ReadResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 9

    set: bool


class ReaderRead(ReaderReadRequest):
    _Response = ReaderReadResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


class ReaderWriteRequest(smpmsg.WriteRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 9

    sha256: bytes
    envelope: bytes | None = None


class ReaderWriteResponse(smpmsg.WriteResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 9

    set: bool


class ReaderWrite(ReaderWriteRequest):
    _Response = ReaderWriteResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


# 10 bill: IS 15959's billing reset on demand (an MD reset)
class BillWriteRequest(smpmsg.WriteRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 10

    envelope: bytes | None = None


class BillWriteResponse(smpmsg.WriteResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 10

    billed: int | None = None  # the billing row's time (RTC s); None: the meter had no period to bill
    pf: int | None = None  # the period's average power factor, thousandths
    md_w: int | None = None  # the period's maximum demand, W (restarted at 0)


class BillWrite(BillWriteRequest):
    _Response = BillWriteResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


# 11 dlms keys: the DLMS utility-settings association's keys (IS 15959's HLS association, client SAP 48): set or not;
# EK and AK set (16 bytes each) or cleared (both empty); the meter takes a write over its console only
class KeysReadRequest(smpmsg.ReadRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 11


class KeysReadResponse(smpmsg.ReadResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 11

    set: bool


class KeysRead(KeysReadRequest):
    _Response = KeysReadResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError


class KeysWriteRequest(smpmsg.WriteRequest):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 11

    ek: bytes
    ak: bytes
    envelope: bytes | None = None


class KeysWriteResponse(smpmsg.WriteResponse):
    _GROUP_ID: ClassVar[smphdr.GroupIdField] = GROUP_SUPPLY
    _COMMAND_ID: ClassVar[int] = 11

    set: bool


class KeysWrite(KeysWriteRequest):
    _Response = KeysWriteResponse
    _ErrorV1 = SupplyErrorV1
    _ErrorV2 = SupplyError
