"""`ota meter relay|topup|tariff|calendar|bill|clock|emergency|credit-reset|reader-secret|dlms-keys`: the supply —
relay, prepaid credit, settings, clock —, the billing reset on demand and the DLMS meter reader's secret and utility
keys (library: ota_tool/supply.py; docs/relay-and-credit.md,
docs/dlms.md). Every change is a signed command."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ..errors import BadInput
from ..link import MeterLink, run
from .meter import meter
from .options import auth_options, authority, emit, json_option, note, port_options, read_input


# -- the supply: relay, credit, settings, clock, events (library: ota_tool/supply.py) ------------------------------
def _signed(f):
    return auth_options(f, key_help="Command-role private key (every supply change is signed, on every meter).",
                         expires=True)


def _auth(command_key: Path | None, passphrase_env: str | None, envelopes: tuple[Path, ...], expires_in: int):
    return authority(command_key, passphrase_env, envelopes, expires_in)


def _show_status(st: dict) -> str:
    from ..supply import STATES

    relay = st["relay"]
    lines = [f"supply      {'ON' if st['output'] else 'OFF'} — class 70 state {st['state']} "
             f"({STATES.get(st['state'], '?')}), control mode {st['mode']}"
             + (f", because: {st['reason']}" if st["reason"] else ""),
             f"relay       feedback {relay['feedback']}, {relay['operations']} operations"
             + (f", FAULT: {relay['fault']}" if relay["fault"] else "")]
    c = st["credit"]
    if c is None:
        lines.append("credit      none kept on this meter (no tariff set)")
    else:
        left = c["time_left_s"]
        shown = "not falling" if left is None else f"{left / 3600:.1f} h at {c['avg_w'] or 0:.0f} W"
        lines.append(f"credit      balance {c['balance'] / 100:.2f}, allowance {c['allowance'] / 100:.2f}, "
                     f"rate {c['rate'] / 100:.2f}/kWh, time left {shown}")
        em = (f"taken {c['emergency_taken'] / 100:.2f}" if c["emergency_taken"] else
              f"available {c['emergency_available'] / 100:.2f}")
        lines.append(f"            emergency {em}, "
                     f"last token id {c['top_tid']}, {'in' if c['window'] else 'outside'} a no-disconnection window"
                     + ("" if c["record"] == "ok" else ", CREDIT RECORD DAMAGED"))
    lim = st["load_limit"]
    lines.append(f"load limit  {lim['threshold_w']} W" + (" (off)" if not lim["threshold_w"] else "")
                 + f", trips {lim['trips']}" + (", LOCKED until a remote reconnect" if lim["locked"] else "")
                 + (", tripped" if lim["tripped"] else ""))
    clk = st["clock"]
    lines.append("clock       " + (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(st["rtc"])) if st["clock_known"]
                                   else "NOT SET (credit never disconnects until it is)")
                 + (f", last set drift {clk.get('drift_s')} s" if clk.get("sets") else ""))
    cover = st.get("cover")
    if cover is not None:
        lines.append(f"cover       {'OFF (open)' if cover['open'] else 'on'}, {cover['openings']} openings since "
                     "the boot")
    if st["last_refusal"]:
        lines.append(f"last refusal {st['last_refusal']}")
    return "\n".join(lines)


@meter.command("relay")
@port_options
@_signed
@click.argument("action", type=click.Choice(["disconnect", "reconnect", "status"]))
@json_option
def relay_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
              envelopes: tuple[Path, ...], expires_in: int, action: str, as_json: bool) -> None:
    """Remote disconnect or reconnect (signed supply.relay), or show the supply's status.

    \b
    In the prepaid mode 6 a remote reconnect makes the supply ready; the consumer's button closes it.
    Exit 9 not authorised, 14 the control mode allows no such change now.
    """
    from .. import supply

    auth = _auth(command_key, passphrase_env, envelopes, expires_in)

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            if action != "status":
                await supply.relay(link, auth, action)
            return await supply.status(link)

    st = run(go())
    emit(st, lambda: _show_status(st))


@meter.command("topup")
@port_options
@auth_options(key_help="Command-role private key: signs a token on the spot (or give --token).", expires=True,
              envelopes=False)
@click.option("--amount", type=click.IntRange(1, 100_000_000), help="Minor currency units (paise): 50000 = 500.00.")
@click.option("--tid", type=click.IntRange(1, 2**31 - 1), help="Token id (default: one above the meter's last).")
@click.option("--token", "token_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A pre-signed token from `ota token` (instead of --key and --amount).")
@json_option
def topup_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
              expires_in: int, amount: int | None, tid: int | None,
              token_file: Path | None, as_json: bool) -> None:
    """Add credit: sign a token with the command key, or send a pre-signed one (--token).

    Exit 14 when the meter refuses the token (replayed, too old, expired, wrong meter, altered ...: the reason is
    named), 9 when it refuses the signer.
    """
    from .. import keys, supply
    from ..authority import read_envelope

    if (token_file is None) == (command_key is None) or (command_key is not None and amount is None):
        raise click.UsageError("give --token FILE, or --key KEY with --amount")

    token = None
    if token_file is not None:
        token = read_input(token_file, "token")
        if read_envelope(token_file, token).get("cmd") != supply.TOPUP:
            raise BadInput(f"{token_file}: a signed envelope, but not a top-up token (make one with `ota token`)")

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            if token is None:
                from ..meter_info import meter_id

                key = keys.load_private(command_key, keys.passphrase_from_env(passphrase_env))
                n = tid if tid is not None else await supply.next_tid(link)
                sent = supply.make_token(key, await meter_id(link), n, amount, expires_in=max(expires_in, 60))
            else:
                sent = token
            t0 = time.monotonic()
            r = await supply.topup(link, sent)
            r["round_trip_s"] = round(time.monotonic() - t0, 3)
            return r

    r = run(go())
    emit(r, f"token {r['tid']}: +{r['amount'] / 100:.2f}, balance {r['balance'] / 100:.2f}, supply "
            f"{'ON' if r['output'] else 'OFF'}")


@meter.command("tariff")
@port_options
@_signed
@click.option("--set", "settings_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="JSON file of supply settings to send (signed supply.config); without it, show them.")
@json_option
def tariff_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
               envelopes: tuple[Path, ...], expires_in: int, settings_file: Path | None, as_json: bool) -> None:
    """Show or set the supply settings: tariff, no-disconnection windows, allowance, alert thresholds, emergency
    credit, load limit, control mode (docs/relay-and-credit.md). The meter checks them whole and names the first
    bad field (exit 14); nothing changes then."""
    from .. import supply

    new = _json_object(settings_file)
    auth = _auth(command_key, passphrase_env, envelopes, expires_in)

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            if new is not None:
                await supply.configure(link, auth, new)
            return await supply.settings(link)

    settings = run(go())
    emit({"settings": settings}, lambda: json.dumps(settings, indent=1))


def _json_object(path: Path | None) -> dict | None:
    """The JSON object in a --set file (None without one); a file that is not one is a usage error (exit 2)."""
    if path is None:
        return None
    try:
        obj = json.loads(read_input(path, "settings").decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError too
        raise click.BadParameter(f"{path}: not JSON: {e}", param_hint="--set") from e
    if not isinstance(obj, dict):
        raise click.BadParameter(f"{path}: not a JSON object", param_hint="--set")
    return obj


@meter.command("calendar")
@port_options
@_signed
@click.option("--set", "calendar_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="JSON file with any of tz_offset_min, tou, tou_weekend, billing_day to change (signed "
                   "meter.calendar); without it, show the calendar.")
@json_option
def calendar_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
                 envelopes: tuple[Path, ...], expires_in: int, calendar_file: Path | None, as_json: bool) -> None:
    """Show or change the metering calendar: the local time offset and the TOU zone tables that the energy
    registers and the tariff's TOU rates follow (docs/relay-and-credit.md), and the billing day (1-28: the monthly
    billing reset at local 00:00 of that day, docs/metering.md). Example file:
    {"tou": [["00:00", 1], ["18:00", 2], ["22:00", 1]], "tou_weekend": null, "billing_day": 15}. The meter checks
    the change whole and names the first bad field (exit 14); nothing changes then. It applies from the next
    reading."""
    from .. import supply

    new = _json_object(calendar_file)
    auth = _auth(command_key, passphrase_env, envelopes, expires_in)

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            if new is not None:
                return await supply.set_calendar(link, auth, new)
            return await supply.calendar(link)

    cal = run(go())

    def text() -> str:
        off = cal["tz_offset_min"]
        return "\n".join([f"local time  UTC{'+' if off >= 0 else '-'}{abs(off) // 60:02d}:{abs(off) % 60:02d}",
                          "weekdays    " + _zones(cal["tou"]),
                          "weekend     " + (_zones(cal["tou_weekend"]) if cal["tou_weekend"] else "as weekdays"),
                          # (an app from before billing days has none: its billing period is the calendar month)
                          f"billing     day {cal.get('billing_day', 1)} of each month, 00:00 local"])

    emit(cal, text)


@meter.command("bill")
@port_options
@_signed
@json_option
def bill_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
             envelopes: tuple[Path, ...], expires_in: int, as_json: bool) -> None:
    """Bill now: IS 15959's billing reset on demand, an MD reset (signed meter.bill). The billing period in force
    ends at once: a billing profile row stamped now (`ota meter profile --billing`), the maximum demand restarts
    at 0, event 425; the monthly reset goes on at the next billing date. A meter with no open period (new) begins
    one and bills nothing. Refused (exit 14, nothing spent) while the meter's clock is not set or is before the
    period's start."""
    from .. import supply

    auth = _auth(command_key, passphrase_env, envelopes, expires_in)

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            return await supply.bill(link, auth)

    r = run(go())

    def text() -> str:
        if r["billed"] is None:
            return f"no billing period was open: one begins now; maximum demand {r['md_w']} W restarted at 0"
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["billed"]))
        return (f"billed to {at}: average power factor {r['pf'] / 1000:.3f}, maximum demand {r['md_w']} W "
                f"(restarted at 0)")

    emit(r, text)


def _zones(table: list) -> str:
    return ", ".join(f"{start} zone {zone}" for start, zone in table)


@meter.command("clock")
@port_options
@_signed
@click.option("--time", "at", type=click.IntRange(0, 2**32 - 1), help="UTC seconds since 1970 (default: this computer's clock).")
@json_option
def clock_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
              envelopes: tuple[Path, ...], expires_in: int, at: int | None, as_json: bool) -> None:
    """Set the meter's clock (signed clock.set) and show how far it had drifted."""
    from .. import supply

    auth = _auth(command_key, passphrase_env, envelopes, expires_in)

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            return await supply.set_clock(link, auth, at)

    r = run(go())
    was = "not set" if r["drift_s"] is None else f"{r['drift_s']:+d} s off"
    emit(r, f"clock set; it was {was}")


@meter.command("emergency")
@port_options
@_signed
@json_option
def emergency_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
                  envelopes: tuple[Path, ...], expires_in: int, as_json: bool) -> None:
    """Grant the consumer's emergency credit (once until the next top-up; the button does the same)."""
    from .. import supply

    auth = _auth(command_key, passphrase_env, envelopes, expires_in)

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            return await supply.emergency(link, auth)

    r = run(go())
    emit(r, f"balance {r['balance'] / 100:.2f}")


@meter.command("credit-reset")
@port_options
@_signed
@click.option("--balance", type=click.IntRange(-(2**31), 2**31 - 1), required=True, help="The head-end's balance for this meter, minor units.")
@click.option("--top-tid", type=click.IntRange(0, 2**31 - 1), required=True,
              help="The last token id the head-end issued to this meter: no token at or below it counts again.")
@click.option("--force", is_flag=True,
              help="Reset a credit record that is not damaged (signed with the command; the meter refuses a reset of "
                   "a healthy record without it). Token ids the meter has accepted stay spent either way.")
@json_option
def credit_reset_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
                     envelopes: tuple[Path, ...], expires_in: int, balance: int, top_tid: int, force: bool,
                     as_json: bool) -> None:
    """Start a new credit record after the meter reported it damaged (event 412, status "CREDIT RECORD DAMAGED"):
    until then it refuses every top-up rather than guess which tokens were spent. On a healthy record the meter
    refuses it (exit 14, "not allowed now") unless --force; it records event 413 with the old and new balance."""
    from .. import supply

    auth = _auth(command_key, passphrase_env, envelopes, expires_in)

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            return await supply.credit_reset(link, auth, balance, top_tid, force)

    r = run(go())
    emit(r, f"credit record reset: balance {r['balance'] / 100:.2f}, last token id {r['top_tid']}")



READER_SECRET_LEN = (8, 32)  # characters: IS 15959 meters' LLS secrets are 8 to 16; the meter keeps only a hash


@meter.command("reader-secret")
@port_options
@_signed
@click.option("--secret-env", metavar="VAR",
              help="Set the secret to this environment variable's value (else it is asked for, hidden, twice).")
@click.option("--secret-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Set the secret to this file's first line (a script's, from a vault: keep the file private).")
@click.option("--set", "set_secret", is_flag=True, help="Set a new secret (signed dlms.reader with its SHA-256).")
@click.option("--clear", is_flag=True, help="Clear it: no DLMS meter reader associates until one is set again.")
@json_option
def reader_secret_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
                      envelopes: tuple[Path, ...], expires_in: int, secret_env: str | None,
                      secret_file: Path | None, set_secret: bool, clear: bool, as_json: bool) -> None:
    """Show whether the meter has a DLMS meter reader's secret, or set or clear it. IS 15959's meter reader (client
    SAP 32, low-level security) reads the load profiles over the optical port with it; the public client (SAP 16)
    cannot (docs/dlms.md). The secret is 8 to 32 printable characters (long and random if flash dumps are a worry);
    only its SHA-256, salted with the meter's id, leaves this computer, in the signed command, and only that is on
    the meter. Three wrong secrets in a row lock the meter reader out for 10 minutes, each next lock twice as long
    (event 420); setting the secret starts the count again."""
    import os

    from .. import supply

    if set_secret and clear:
        raise click.UsageError("--set and --clear: one or the other")
    if secret_env == "":
        raise click.BadParameter("an empty variable name", param_hint="--secret-env")
    if (secret_env is not None or secret_file is not None) and not set_secret:
        raise click.UsageError("--secret-env and --secret-file go with --set")
    if secret_env is not None and secret_file is not None:
        raise click.UsageError("--secret-env or --secret-file: one or the other")
    secret: bytes | None = None
    hint = "--secret-env" if secret_env else ("--secret-file" if secret_file else "secret")
    if set_secret:
        if secret_file:
            try:
                value = (read_input(secret_file, "secret").decode("utf-8").splitlines() or [""])[0]
            except UnicodeDecodeError as e:
                raise click.BadParameter(f"{secret_file}: not text", param_hint=hint) from e
        elif secret_env:
            value = os.environ.get(secret_env) or ""
            if not value:
                raise click.BadParameter(f"environment variable {secret_env} is empty or unset",
                                         param_hint="--secret-env")
        elif as_json:
            raise click.UsageError("--json takes the secret from --secret-env or --secret-file (no prompt for a script)")
        else:
            value = click.prompt("meter reader secret", hide_input=True, confirmation_prompt=True, err=True)
        lo, hi = READER_SECRET_LEN
        if not lo <= len(value) <= hi or not value.isprintable() or not value.isascii():
            raise click.BadParameter(f"the secret must be {lo} to {hi} printable ASCII characters", param_hint=hint)
        secret = value.encode()
    auth = _auth(command_key, passphrase_env, envelopes, expires_in)  # (checked before the port, read or not)

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            if set_secret or clear:
                return await supply.set_reader_secret(link, auth, secret)
            return await supply.reader_secret(link)

    is_set = run(go())
    emit({"set": is_set}, "meter reader secret: " + (
        "set (the DLMS meter reader, client SAP 32, associates with it)" if is_set
        else "not set (no DLMS meter reader associates: over DLMS the load profiles stay unread)"))


@meter.command("dlms-keys")
@port_options
@_signed
@click.option("--keys-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help='Set the keys from this JSON file: {"ek": "32 hex digits", "ak": "32 hex digits"} (keep it private).')
@click.option("--clear", is_flag=True, help="Clear them: no DLMS utility association until keys are set again.")
@json_option
def dlms_keys_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
                  envelopes: tuple[Path, ...], expires_in: int, keys_file: Path | None, clear: bool,
                  as_json: bool) -> None:
    """Show whether the meter has the DLMS utility-settings association's keys, or set or clear them (signed
    dlms.keys). IS 15959's utility association (client SAP 48, high-level security with GMAC, every APDU
    authenticated and encrypted: security suite 0) reads the meter and operates its relay with them
    (docs/dlms.md). EK is the global unicast encryption key, AK the authentication key, 16 bytes each. They travel
    in the clear inside the signed command, so the meter takes them over its console (the cable) only, and refuses
    them over the modem (exit 14)."""
    from .. import supply

    if keys_file is not None and clear:
        raise click.UsageError("--keys-file and --clear: one or the other")
    keys: tuple[bytes, bytes] | None = None
    if keys_file is not None:
        try:
            obj = json.loads(read_input(keys_file, "keys file"))
            if not isinstance(obj, dict) or set(obj) != {"ek", "ak"}:
                raise ValueError('an object with "ek" and "ak" and nothing else')
            ek, ak = (bytes.fromhex(obj[k]) if isinstance(obj[k], str) else b"" for k in ("ek", "ak"))
        except (ValueError, UnicodeDecodeError) as e:
            raise click.BadParameter(f"{keys_file}: {e}", param_hint="--keys-file") from e
        if len(ek) != 16 or len(ak) != 16:
            raise click.BadParameter(f"{keys_file}: ek and ak are 16 bytes each (32 hex digits)",
                                     param_hint="--keys-file")
        keys = (ek, ak)
    auth = _auth(command_key, passphrase_env, envelopes, expires_in)  # (checked before the port, read or not)

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            if keys is not None or clear:
                return await supply.set_dlms_keys(link, auth, keys)
            return await supply.dlms_keys(link)

    is_set = run(go())
    emit({"set": is_set}, "dlms utility keys: " + (
        "set (the DLMS utility association, client SAP 48, associates with them)" if is_set
        else "not set (no DLMS utility association: nothing over DLMS operates the relay)"))


COMMANDS: list = []  # they join the `meter` group
