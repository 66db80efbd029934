"""The meter's supply over SMP group 66 (firmware/app/supply_group.py, docs/relay-and-credit.md): relay state and
remote disconnect/reconnect, prepaid top-up tokens, supply settings (tariff, windows, load limit), the clock and
the event log. Changes are signed command envelopes (command-role key); reading is open."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meterkit import envelope

from . import device_policy
from .authority import Authority
from .errors import BadInput, DeviceRefused, NotAuthorised, Refused
from .link import READ_RETRIES, MeterLink
from .supply_groups import (
    GROUP_SUPPLY,
    LOGS,
    BillWrite,
    CalendarRead,
    CalendarWrite,
    ClockWrite,
    CreditResetWrite,
    EmergencyWrite,
    EventsRead,
    KeysRead,
    KeysWrite,
    ReaderRead,
    ReaderWrite,
    RelayWrite,
    SettingsRead,
    SettingsWrite,
    StatusRead,
    SupplyRc,
    TopupWrite,
)

TOPUP = "credit.topup"
RC_WORDS = {SupplyRc.NOT_AUTHORISED: "not authorised", SupplyRc.TOKEN_REFUSED: "token refused",
            SupplyRc.BAD_SETTINGS: "settings refused",
            SupplyRc.NO_CREDIT: "no credit to give (no tariff set, or a debt deeper than the emergency credit)",
            SupplyRc.BAD_REQUEST: "bad request", SupplyRc.NOT_ALLOWED: "not allowed now"}
# class-70 states and event codes, as the firmware defines them (firmware/app/disconnect.py, events.py)
STATES = device_policy.class70_states()
EVENTS = device_policy.event_codes()


class SupplyRefused(Refused):
    """The meter refused a supply command or a top-up token; `reason` is its last_refusal."""


def _fields(rsp) -> dict:
    return rsp.model_dump(exclude={"header", "version", "sequence", "smp_data"})


async def _send(link: MeterLink, req, what: str) -> dict:
    """One supply request; a refusal comes back as an OtaError naming the meter's reason (exit 9 or 14)."""
    try:
        return _fields(await link.request(req, what))
    except DeviceRefused as e:
        if e.group != GROUP_SUPPLY:
            raise
        why = (await status(link))["last_refusal"]
        message = f"{what}: {RC_WORDS.get(SupplyRc(e.rc), 'refused') if e.rc in set(SupplyRc) else 'refused'}: {why}"
        if e.rc == SupplyRc.NOT_AUTHORISED:
            raise NotAuthorised(message, why) from e
        raise SupplyRefused(message, why) from e


async def status(link: MeterLink) -> dict:
    return _fields(await link.request(StatusRead(), "supply status", retries=READ_RETRIES))


async def relay(link: MeterLink, authority: Authority, action: str) -> dict:
    env = await authority.envelope(link, "supply.relay", {"action": action})
    return await _send(link, RelayWrite(action=action, envelope=env), f"relay {action}")


def make_token(key: Ed25519PrivateKey, meter: str, tid: int, amount: int, expires_in: int = 30 * 86400,
               now: int | None = None) -> bytes:
    """A top-up token: a signed credit.topup envelope for one meter, numbered `tid` (the head-end's sequence for
    that meter), worth `amount` minor currency units."""
    if tid < 1 or not 0 < amount <= 100_000_000:
        raise ValueError("tid must be >= 1 and amount 1..100000000 minor units")
    return envelope.make(key, meter, TOPUP, {"tid": tid, "amount": amount}, expires_in=expires_in, now=now)


async def topup(link: MeterLink, token: bytes) -> dict:
    return await _send(link, TopupWrite(token=token), "top-up")


async def next_tid(link: MeterLink) -> int:
    credit = (await status(link))["credit"]
    if credit is None:
        raise SupplyRefused("top-up: the meter keeps no credit (no tariff set: `ota meter tariff --set`)")
    return int(credit["top_tid"]) + 1


async def settings(link: MeterLink) -> dict:
    return _fields(await link.request(SettingsRead(), "supply settings", retries=READ_RETRIES))["settings"]


async def configure(link: MeterLink, authority: Authority, new: dict) -> dict:
    env = await authority.envelope(link, "supply.config", {"settings": new})
    return (await _send(link, SettingsWrite(settings=new, envelope=env), "settings"))["settings"]


async def calendar(link: MeterLink) -> dict:
    """The metering calendar: local time offset (tz_offset_min) and TOU zone tables (tou, tou_weekend)."""
    return _fields(await link.request(CalendarRead(), "calendar", retries=READ_RETRIES))["calendar"]


async def set_calendar(link: MeterLink, authority: Authority, new: dict) -> dict:
    env = await authority.envelope(link, "meter.calendar", {"calendar": new})
    return (await _send(link, CalendarWrite(calendar=new, envelope=env), "calendar"))["calendar"]


async def reader_secret(link: MeterLink) -> bool:
    """Whether the meter has a DLMS meter reader's secret (IS 15959's LLS association, client SAP 32)."""
    return _fields(await link.request(ReaderRead(), "reader secret", retries=READ_RETRIES))["set"]


async def dlms_keys(link: MeterLink) -> bool:
    """Whether the meter has the DLMS utility-settings association's keys (IS 15959's HLS association, SAP 48)."""
    return _fields(await link.request(KeysRead(), "dlms keys", retries=READ_RETRIES))["set"]


async def set_dlms_keys(link: MeterLink, authority: Authority, keys: tuple[bytes, bytes] | None) -> bool:
    """Give the meter the DLMS utility association's keys, (EK, AK) of 16 bytes each (signed dlms.keys; the keys
    travel in the clear, so the meter takes them over its console only, never over the modem), or clear them (None:
    no utility association)."""
    ek, ak = keys if keys is not None else (b"", b"")
    if keys is not None and link.udp:  # the keys would cross the network in the clear before the meter refused them
        raise BadInput("dlms keys: set them over the meter's console (a serial port), never over udp:// or modem://: "
                       "they travel in the clear inside the signed command")
    env = await authority.envelope(link, "dlms.keys", {"ek": ek, "ak": ak})
    return (await _send(link, KeysWrite(ek=ek, ak=ak, envelope=env), "dlms keys"))["set"]


def reader_digest(meter_id: str, secret: bytes) -> bytes:
    """What the meter keeps of the meter reader's secret (firmware/app/dlms_secret.py digest): the SHA-256 of its id,
    a zero byte and the secret (salted: a flash dump fits no other meter, and two meters with one secret keep two
    digests)."""
    import hashlib

    return hashlib.sha256(meter_id.encode() + b"\x00" + secret).digest()


async def set_reader_secret(link: MeterLink, authority: Authority, secret: bytes | None) -> bool:
    """Give the meter the DLMS meter reader's secret (signed dlms.reader with its salted SHA-256: the secret itself
    never travels over SMP nor sits in an envelope), or clear it (None: no meter reader associates)."""
    digest = b"" if secret is None else reader_digest(await authority.meter_id(link), secret)
    env = await authority.envelope(link, "dlms.reader", {"sha256": digest})
    return (await _send(link, ReaderWrite(sha256=digest, envelope=env), "reader secret"))["set"]


async def credit_reset(link: MeterLink, authority: Authority, balance: int, top_tid: int, force: bool = False) -> dict:
    """Start a new credit record (after event 412, a damaged one): the head-end's balance and the last token id it
    issued, so no token spent before can count again. The meter refuses it on a healthy record unless `force` is
    signed with it, and never moves its token window back (the reply's top_tid is where it stands)."""
    args: dict = {"balance": balance, "top_tid": top_tid}
    if force:
        args["force"] = True
    env = await authority.envelope(link, "credit.reset", args)
    req = (CreditResetWrite(balance=balance, top_tid=top_tid, envelope=env, force=True) if force
           else CreditResetWrite(balance=balance, top_tid=top_tid, envelope=env))
    return await _send(link, req, "credit reset")


async def set_clock(link: MeterLink, authority: Authority, t: int | None = None) -> dict:
    t = int(time.time()) if t is None else t
    env = await authority.envelope(link, "clock.set", {"time": t})
    return await _send(link, ClockWrite(time=t, envelope=env), "clock set")


async def bill(link: MeterLink, authority: Authority) -> dict:
    """IS 15959's billing reset on demand (an MD reset, signed meter.bill): the billing period in force ends now.
    {billed: the row's RTC s or None (no period to bill: one begins), pf: thousandths, md_w: W}."""
    env = await authority.envelope(link, "meter.bill", {})
    return await _send(link, BillWrite(envelope=env), "billing reset")


async def emergency(link: MeterLink, authority: Authority) -> dict:
    env = await authority.envelope(link, "credit.emergency", {})
    return await _send(link, EmergencyWrite(envelope=env), "emergency credit")


async def events(link: MeterLink, since: int = 0) -> list[dict]:
    """Every event the meter still holds above sequence `since`, oldest first, paged 16 at a time."""
    out = []
    while True:
        rsp = _fields(await link.request(EventsRead(since=since, limit=16), "events", retries=READ_RETRIES))
        for seq, code, rtc, detail in rsp["events"]:
            out.append({"seq": seq, "code": code, "event": EVENTS.get(code, "event"), "rtc": rtc, "detail": detail})
        if not rsp["events"] or rsp["events"][-1][0] >= rsp["seq"]:
            return out
        since = rsp["events"][-1][0]


# an event log row's snapshot (firmware/app/event_logs.py): the supply's figures at the event's reading, as the DLMS
# registers give them (cV, mA, thousandths, mWh), and the name and scale of each in the host's answer
SNAPSHOT = (("voltage", 100), ("current", 1000), ("pf", 1000), ("import_wh", 1000))


def logged_event(row: list) -> dict:
    """One row of a log read: [seq, code, RTC s, then the snapshot: V, I, PF, import energy, each None when the meter
    had none]; a meter whose logs keep no snapshot (an app before it) sends the first three only."""
    if type(row) is not list or len(row) not in (3, 3 + len(SNAPSHOT)) or \
            not all(type(v) is int or (v is None and k > 1) for k, v in enumerate(row)):
        raise Refused(f"the meter's event log row {row!r} is not [seq, code, time, V, I, PF, energy] (integers)")
    seq, code, rtc = row[:3]
    e = {"seq": seq, "code": code, "event": EVENTS.get(code, "event"), "rtc": rtc}
    for (name, scale), v in zip(SNAPSHOT, row[3:] or [None] * len(SNAPSHOT), strict=True):
        e[name] = None if v is None else v / scale
    return e


async def event_log(link: MeterLink, log: str, since: int = 0) -> dict:
    """One IS 15959 event log (a name of LOGS): {log, total, depth, events}, its events above sequence `since`
    oldest first, each {seq, code, event, rtc, voltage, current, pf, import_wh} (the supply at the event: V, A, the
    signed power factor, the import register in Wh; None each when the meter had no reading); `total` counts every
    event the log has taken (a full non-rollover log only counts the later ones), `depth` how many it keeps."""
    out: list[dict] = []
    while True:
        rsp = _fields(await link.request(EventsRead(since=since, limit=16, log=LOGS.index(log)), "events",
                                         retries=READ_RETRIES))
        if rsp.get("log") != LOGS.index(log):
            raise Refused(f"the meter answered with no {log} log: its app keeps one event ring only (update it)")
        for row in rsp["events"]:
            out.append(logged_event(row))
        if not rsp["events"] or rsp["events"][-1][0] >= rsp["seq"]:
            return {"log": log, "total": rsp["total"], "depth": rsp["depth"], "events": out}
        since = rsp["events"][-1][0]
