"""`ota meter network`: the meter's NB-IoT link and its head-end (library: ota_tool/network.py; docs/field-team.md
"The meter's head-end")."""

from __future__ import annotations

from pathlib import Path

import click

from ..link import MeterLink, run
from .meter import meter
from .options import auth_options, authority, emit, json_option, note, port_options


def _where(h: dict | None) -> str:
    if not h:
        return "none"
    return (f"{h['ip']}:{h['port']}, uplink " + (f"every {h['uplink_s']} s" if h["uplink_s"] else "off")
            + (f", DLMS to port {h['dlms_port']}" if "dlms_port" in h else ""))


def _show(st: dict) -> str:
    h = st["headend"]
    nxt = st["next_boot"]
    lines = [f"module      {'fitted' if st['fitted'] else 'none on this board'}; link {st['link']}"
             + ("" if st["link"] != "none" else " (the network starts at boot with a module and a head-end)"),
             "head-end    " + _where(h)]
    if nxt != h:
        lines.append("next boot   " + _where(nxt) + " (stored; used from the next reset)")
    m = st.get("modem")
    if m:
        lines.append(f"module      +CEREG stat {m['stat']}, {m['failures']} failed bring-ups in a row, "
                     f"{m['pulses']} power-key pulses, {m['restarts']} restarts, {m['sent']} datagrams sent"
                     + (f", last error: {m['last_error']}" if m["last_error"] else ""))
    s = st.get("smp")
    if s:
        lines.append(f"smp/udp     {s['answered']} answered, {s['unsent']} unsent, {s['dropped']} dropped (queue full), "
                     f"{s['malformed']} malformed, {s.get('split', 0)} extra datagrams for large replies, {s['refused_large']} refused (amplifier)")
    d = st.get("dlms")
    if d:
        lines.append(f"dlms/udp    wrapper on port {d['port']} ({'open' if d['open'] else 'not open yet'}), "
                     f"{d['sessions']} sessions, {d['dropped']} dropped (queue full)")
        if "pushes" in d:  # (a meter from before the alert push)
            lines.append(f"dlms/push   {d['pushes']} alerts pushed, {d['push_failures']} not sent"
                         + (f", last: {d['push_error']}" if d["push_error"] else ""))
    lines.append(f"uplinks     {st['uplinks']} sent")
    if st.get("last_refusal"):
        lines.append(f"refused     {st['last_refusal']}")
    return "\n".join(lines)


@meter.command("network")
@port_options
@auth_options(key_help="Command-role private key (a head-end change is signed, on every meter).", expires=True)
@click.option("--headend", metavar="IP:PORT", help="Set the head-end the meter serves SMP over UDP to (signed "
              "meter.headend); used from the meter's next reset. A numeric address: the module takes no names.")
@click.option("--uplink", type=click.IntRange(0, 86400), default=0, show_default=True,
              help="With --headend: seconds between the meter's uplink datagrams (keeps the NAT mapping open and "
                   "tells the head-end where the meter is); 0: none; else at least 20.")
@click.option("--dlms-port", type=click.IntRange(1, 65535), default=None,
              help="With --headend: the head-end's UDP port for DLMS/COSEM through the IEC 62056-47 wrapper; the meter "
                   "serves it on its port 4059 (a board with the DLMS port's modules). Default: no DLMS over the "
                   "network.")
@click.option("--clear-headend", is_flag=True, help="Remove the head-end (signed): the meter leaves its module "
              "off from the next reset.")
@json_option
def network_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
                envelopes: tuple[Path, ...], expires_in: int, headend: str | None, uplink: int, dlms_port: int | None,
                clear_headend: bool, as_json: bool) -> None:
    """Show the meter's NB-IoT link (module, registration, counters) and its head-end, or change the head-end.
    A meter serves SMP over its module only to its one head-end (a BC660K socket answers only the address it was
    opened to), and DLMS through the UDP wrapper to the head-end's --dlms-port; without a head-end it leaves the
    module off. Exit 9 when the change is not authorised, 14 when the
    meter refuses the value."""
    from .. import network

    if headend is not None and clear_headend:
        raise click.UsageError("give --headend or --clear-headend, not both")
    new: dict | None = None
    if headend is not None:
        ip, sep, p = headend.rpartition(":")
        if not sep or not p.isdigit():
            raise click.BadParameter(f"{headend!r}: give IP:PORT, e.g. 10.64.0.1:4059", param_hint="--headend")
        new = network.headend(ip.strip("[]"), int(p), uplink, dlms_port)
    elif uplink or dlms_port is not None:
        raise click.UsageError("--uplink and --dlms-port go with --headend")
    change = headend is not None or clear_headend
    auth = authority(command_key, passphrase_env, envelopes, expires_in)  # checks the files given either way

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            if change:
                await network.set_headend(link, auth, new)
            return await network.status(link)

    st = run(go())
    emit(st, lambda: _show(st) + ("\nchanged     the meter uses it from its next reset (`ota reset`)" if change
                                  else ""))


COMMANDS: list = []  # it joins the `meter` group
