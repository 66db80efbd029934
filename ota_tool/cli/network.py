"""`ota meter network`: the meter's NB-IoT link and its head-end (library: ota_tool/network.py; docs/field-team.md
"The meter's head-end")."""

from __future__ import annotations

from pathlib import Path

import click

from ..link import MeterLink, run
from .meter import meter
from .options import auth_options, authority, emit, json_option, note, port_options


def _show(st: dict) -> str:
    h = st["headend"]
    nxt = st["next_boot"]
    lines = [f"module      {'fitted' if st['fitted'] else 'none on this board'}; link {st['link']}"
             + ("" if st["link"] != "none" else " (the network starts at boot with a module and a head-end)"),
             "head-end    " + (f"{h['ip']}:{h['port']}, uplink " + (f"every {h['uplink_s']} s" if h["uplink_s"]
                                                                      else "off") if h else "none")]
    if nxt != h:
        lines.append("next boot   " + (f"{nxt['ip']}:{nxt['port']}, uplink every {nxt['uplink_s']} s" if nxt
                                       else "none") + " (stored; used from the next reset)")
    m = st.get("modem")
    if m:
        lines.append(f"module      +CEREG stat {m['stat']}, {m['failures']} failed bring-ups in a row, "
                     f"{m['pulses']} power-key pulses, {m['restarts']} restarts, {m['sent']} datagrams sent"
                     + (f", last error: {m['last_error']}" if m["last_error"] else ""))
    s = st.get("smp")
    if s:
        lines.append(f"smp/udp     {s['answered']} answered, {s['unsent']} unsent, {s['dropped']} dropped (queue full), "
                     f"{s['malformed']} malformed, {s.get('split', 0)} extra datagrams for large replies, {s['refused_large']} refused (amplifier)")
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
@click.option("--clear-headend", is_flag=True, help="Remove the head-end (signed): the meter leaves its module "
              "off from the next reset.")
@json_option
def network_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
                envelopes: tuple[Path, ...], expires_in: int, headend: str | None, uplink: int, clear_headend: bool,
                as_json: bool) -> None:
    """Show the meter's NB-IoT link (module, registration, counters) and its head-end, or change the head-end.
    A meter serves SMP over its module only to its one head-end (a BC660K socket answers only the address it was
    opened to); without a head-end it leaves the module off. Exit 9 when the change is not authorised, 14 when the
    meter refuses the value."""
    from .. import network

    if headend is not None and clear_headend:
        raise click.UsageError("give --headend or --clear-headend, not both")
    new: dict | None = None
    if headend is not None:
        ip, sep, p = headend.rpartition(":")
        if not sep or not p.isdigit():
            raise click.BadParameter(f"{headend!r}: give IP:PORT, e.g. 10.64.0.1:4059", param_hint="--headend")
        new = network.headend(ip.strip("[]"), int(p), uplink)
    elif uplink:
        raise click.UsageError("--uplink goes with --headend")
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
