"""Host side of the meter's NB-IoT radio: the meter's own loopback address, the `link.*` settings (checked here,
applied in the VM's link model, emulator/device/_emu_link.py) and the module's `ctl modem` actions."""

from __future__ import annotations

import errno
import hashlib
import socket
from pathlib import Path
from typing import Any

from .device import _emu_link as linkmodel
from .errors import ControlError
from .grid import finite, shown

SMP_UDP_PORT = 1337  # SMP over UDP (STANDARDS.md): where a head-end reaches the meter
ADDRESS_TRIES = 64  # addresses tried after the folder's own when another process holds ADDR:1337

SETTABLE = {
    "link.profile": "the radio link: " + ", ".join(sorted(linkmodel.PROFILES)) + " (resets the other link.* keys)",
    "link.down_kbps": "downlink rate, kbit/s (0: no limit)",
    "link.up_kbps": "uplink rate, kbit/s (0: no limit)",
    "link.rtt_s": "round-trip time range LO:HI seconds, 0..120",
    "link.loss": "probability a datagram is lost (0..1)",
    "link.dup": "probability a datagram arrives twice (0..1)",
    "link.reorder": "probability a datagram is overtaken by later ones (0..1)",
    "link.idle_s": "seconds without traffic until the radio goes idle (0: never)",
    "link.reconnect_s": "range LO:HI seconds an idle radio takes to reconnect, 0..120",
    "link.nat": "NAT mapping lifetime for device-initiated flows: seconds 1..86400, 'on' (30 s) or 'off'",
}
MODEM_ACTIONS = {
    "remove": "pull the module out (IS 15959 event 209): no bytes either way, sockets gone",
    "insert": "put it back: it powers up and prints RDY",
    "wedge": "the module stops answering until its power key is pulsed (or it is removed and inserted)",
    "deny": "the network denies registration (+CEREG: 3); open sockets close",
    "allow": "the network accepts registration again",
}


def meter_address(state_dir: Path) -> str:
    """The meter's own address in 127.0.0.0/8, from its state folder (the same folder, the same address), moved on
    when another process already holds ADDR:1337 (two meters on one machine never share one)."""
    h = int.from_bytes(hashlib.sha256(str(Path(state_dir).resolve()).encode()).digest()[:4], "big")
    for k in range(ADDRESS_TRIES + 1):
        x = (h + k * 40503) & 0xFFFFFF
        a, b, c = 64 + (x >> 16) % 190, (x >> 8) & 0xFF, x & 0xFF  # 127.64.0.0 .. 127.253.255.255
        c = c if 0 < c < 255 else 1
        addr = f"127.{a}.{b}.{c}"
        if _free(addr):
            return addr
    raise ControlError(f"no free loopback address for the meter's UDP port {SMP_UDP_PORT}")


def _free(addr: str) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((addr, SMP_UDP_PORT))
        return True
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return False
        raise
    finally:
        s.close()


def defaults() -> dict:
    return {"link.profile": linkmodel.DEFAULT_PROFILE}


def _range(key: str, raw: Any) -> list[float]:
    items = raw if isinstance(raw, list) else str(raw).split(":")
    if len(items) != 2:
        raise ControlError(f"{key}: expected LO:HI seconds (e.g. 0.5:1.5), got {shown(raw)}")
    lo = finite(key, items[0], 0, linkmodel.RANGE_LIMIT_S)
    hi = finite(key, items[1], 0, linkmodel.RANGE_LIMIT_S)
    if lo > hi:
        raise ControlError(f"{key}: LO must not be above HI, got {shown(raw)}")
    return [lo, hi]


def parse(key: str, raw: Any) -> Any:
    """The canonical value of one `link.*` setting; ControlError naming the key and what it allows."""
    if key == "link.profile":
        if raw not in linkmodel.PROFILES:
            raise ControlError(f"{key}: expected one of {', '.join(sorted(linkmodel.PROFILES))}, got {shown(raw)}")
        return raw
    if key in ("link.rtt_s", "link.reconnect_s"):
        return _range(key, raw)
    if key == "link.nat":
        word = str(raw).strip().lower()
        if word == "off":
            return None
        if word == "on":
            return linkmodel.NAT_DEFAULT_S
        lo, hi = linkmodel.LIMITS["nat_s"]
        try:
            return int(finite(key, raw, lo, hi))
        except ControlError as e:
            raise ControlError(f"{e}; or 'on' ({linkmodel.NAT_DEFAULT_S} s) or 'off'") from None
    name = key[5:] if key.startswith("link.") else ""
    if name in linkmodel.LIMITS and name != "nat_s":
        lo, hi = linkmodel.LIMITS[name]
        v = finite(key, raw, lo, hi)
        return int(v) if isinstance(lo, int) else v
    raise ControlError(f"unknown key {key!r}; keys: " + ", ".join(SETTABLE))


def params(settings: dict) -> dict:
    """The link model's parameters for the stored settings: the profile, then each override."""
    p = linkmodel.profile(settings.get("link.profile", linkmodel.DEFAULT_PROFILE))
    for key, v in settings.items():
        if key != "link.profile":
            p = linkmodel.apply_setting(p, key, v)
    return p


def apply(settings: dict, key: str, value: Any) -> None:
    """Store one checked setting: a profile starts afresh, any other key overrides it."""
    if key == "link.profile":
        settings.clear()
    settings[key] = value


SCENARIO_KEYS = {key: parse for key in SETTABLE}  # what a scenario step may set besides the grid's keys


def modem_action(raw: Any) -> str:
    if raw not in MODEM_ACTIONS:
        raise ControlError(f"modem action: expected one of {', '.join(MODEM_ACTIONS)}, got {shown(raw)}")
    return raw
