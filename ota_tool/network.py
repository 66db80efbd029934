"""The meter's NB-IoT network over SMP group 67 (firmware/app/network.py, docs/field-team.md "The meter's
head-end"): the link's state and counters, and the head-end address the meter serves SMP over UDP to, and DLMS
through the UDP wrapper when it has a DLMS port (signed `meter.headend`, used from the meter's next boot)."""

from __future__ import annotations

import ipaddress

from . import device_policy
from .authority import Authority
from .errors import BadInput, DeviceRefused, NotAuthorised, Refused
from .link import READ_RETRIES, MeterLink
from .network_groups import GROUP_NETWORK, HeadendRead, HeadendWrite, NetworkRc, StatusRead

UPLINK_MIN_S, UPLINK_MAX_S = device_policy.uplink_bounds()  # firmware/app/network.py, read from its source
HEADEND_CMD = "meter.headend"


class HeadendRefused(Refused):
    """The meter refused the head-end (not authorised, or a value it does not take)."""


def _fields(rsp) -> dict:
    return rsp.model_dump(exclude={"header", "version", "sequence", "smp_data"})


def headend(ip: str, port: int, uplink_s: int = 0, dlms_port: int | None = None) -> dict:
    """A head-end value as the meter takes it (with dlms_port: the head-end's UDP port for DLMS through the
    wrapper, which the meter serves on its port 4059); BadInput naming the problem otherwise."""
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise BadInput(f"head-end {ip!r}: not a numeric IP address (the meter's module takes no names)") from None
    if not 1 <= port <= 65535:
        raise BadInput(f"head-end port {port}: give 1..65535")
    if uplink_s and not UPLINK_MIN_S <= uplink_s <= UPLINK_MAX_S:
        raise BadInput(f"uplink every {uplink_s} s: give 0 (none) or {UPLINK_MIN_S}..{UPLINK_MAX_S} s")
    if dlms_port is not None and not 1 <= dlms_port <= 65535:
        raise BadInput(f"head-end DLMS port {dlms_port}: give 1..65535")
    h = {"ip": ip, "port": port, "uplink_s": uplink_s}
    if dlms_port is not None:
        h["dlms_port"] = dlms_port
    return h


async def status(link: MeterLink) -> dict:
    return _fields(await link.request(StatusRead(), "network status", retries=READ_RETRIES))


async def set_headend(link: MeterLink, authority: Authority, new: dict | None) -> dict:
    """Store the head-end (None: none) for the meter's next boot; the meter's answer {headend, now}."""
    env = await authority.envelope(link, HEADEND_CMD, {"headend": new})
    try:
        return _fields(await link.request(HeadendWrite(headend=new, envelope=env), "head-end"))
    except DeviceRefused as e:
        if e.group != GROUP_NETWORK:
            raise
        why = (await status(link))["last_refusal"]
        if e.rc == NetworkRc.NOT_AUTHORISED:
            raise NotAuthorised(f"head-end: not authorised: {why}", why.rpartition(": ")[2]) from e
        raise HeadendRefused(f"head-end: refused: {why}", why) from e


async def read_headend(link: MeterLink) -> dict:
    return _fields(await link.request(HeadendRead(), "head-end", retries=READ_RETRIES))
