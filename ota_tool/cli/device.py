"""Commands that manage a meter's firmware over its port: info, echo, status, push, confirm, reset, erase,
console, provision. The workflows are the library's (ota_tool/push.py, provision.py); this only renders them."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .. import image, meter_info
from .. import push as pushing
from ..errors import BadInput, ImageRejected
from ..link import MeterLink, run
from .options import (
    PORT_HELP,
    Finite,
    Text,
    _baud,
    auth_options,
    authority,
    bar,
    check_link,
    emit,
    json_option,
    note,
    port_options,
    read_input,
    serial_only,
)

IN_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


@click.command()
@port_options
@json_option
def info(port: str, baud: int, timeout: float, as_json: bool) -> None:
    """Show what the meter is: board, meter id, app version, MicroPython version, SMP buffer size, and its update
    policy (mode, security counter, slot size)."""

    async def go() -> dict:
        async with MeterLink(port, baud, timeout, note=note) as link:
            data = await meter_info.read_info(link)
            st = await pushing.status(link)
        for k in ("mode", "counter", "max_step", "loader_api", "budget"):
            if st.get(k) is not None:
                data[k] = st[k]
        return data

    data = run(go())
    width = max(len(k) for k in data)
    emit(data, lambda: "\n".join(f"{k:<{width}}  {v}" for k, v in data.items()))


@click.command()
@port_options
@click.argument("text", default="hello")
@json_option
def echo(port: str, baud: int, timeout: float, text: str, as_json: bool) -> None:
    """Send TEXT to the meter's SMP echo and print what comes back (a link check)."""

    async def go() -> str:
        async with MeterLink(port, baud, timeout, note=note) as link:
            return await meter_info.echo(link, text)

    back = run(go())
    emit({"echo": back}, back)


def _slot_line(r: dict) -> str:
    flags = ",".join(k for k in ("active", "confirmed", "pending", "permanent", "bootable") if r.get(k))
    return f"slot {r['slot']}: {r['version']:12} {flags:38} {r['hash']}"


@click.command()
@port_options
@json_option
def status(port: str, baud: int, timeout: float, as_json: bool) -> None:
    """Show the meter's image slots (SMP image state), its security counter and the last test boot."""

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            return await pushing.slots(link), await pushing.status(link)

    rows, st = run(go())
    trial = pushing._plain(st["trial"]) if isinstance(st.get("trial"), dict) else None
    out = {"slots": rows, "counter": st.get("counter"), "mode": st.get("mode"), "update": st.get("state"),
           "trial": trial}

    def text() -> str:
        lines = [_slot_line(r) for r in rows]
        if st.get("counter") is not None:
            lines.append(f"security counter {st['counter']} (images may carry {st['counter']}.."
                         f"{st['counter'] + (st.get('max_step') or 0)}), {st.get('mode')} meter")
        if trial:
            lines.append(f"last test boot: {trial.get('version')} {trial.get('outcome')}"
                         + (f" ({trial['reason']})" if trial.get("reason") else ""))
        return "\n".join(lines)

    emit(out, text)


@click.command()
@click.argument("image_file", type=IN_FILE)
@port_options
@click.option("--no-local-check", is_flag=True,
              help="Send even an image the local checks refuse (structure, and what the meter reports: board, "
                   "trusted keys, security counter, slot size).")
@click.option("--test", "mode_", flag_value="test", help="Then install it as a test boot (the app confirms itself "
              "after its self-test; a test boot that fails or is not confirmed reverts: exit 15).")
@click.option("--confirm", "mode_", flag_value="confirm", help="Then install it for good (no test boot).")
@click.option("--reset-wait", type=Finite(1, 3600), default=60.0, show_default=True, metavar="SECONDS",
              help="How long the meter may take to come back from its reset (the loader installs first); raise it "
                   "on a slow or noisy link.")
@click.option("--verdict-wait", type=Finite(0, 3600), default=150.0, show_default=True, metavar="SECONDS",
              help="With --test: how long to wait for the meter's self-test to confirm the new app or roll it back "
                   "(0: report at once).")
@json_option
@auth_options
def push(image_file: Path, port: str, baud: int, timeout: float, no_local_check: bool, mode_: str | None,
         reset_wait: float, verdict_wait: float, as_json: bool, command_key: Path | None, passphrase_env: str | None,
         envelopes: tuple[Path, ...]) -> None:
    """Upload a signed image to the meter and report its verdict; with --test or --confirm, install it and report
    what the meter runs afterwards.

    \b
    Before a byte is sent, the image is checked against what the meter reports (board, trusted keys, security
    counter, slot size) and refused with the meter's own reason (exit 8-13). A locked meter installs only with a
    signed command: give --key (command role) or --envelope files for image.state and os.reset (both are checked
    before either is spent). A test boot that fails exits 15 naming the reason and the meter's last lines.
    Rerunning after an interruption resumes the upload where it stopped.
    """
    data = read_input(image_file, "image")
    if not no_local_check:
        from .. import bundle

        try:
            parsed = image.parse(data)
            image.check_hash(data, parsed)
            bundle.unpack(parsed.payload)
        except (image.ImageError, bundle.BundleInvalid) as e:
            raise ImageRejected(f"rejected by the local check (send anyway with --no-local-check): {e}",
                                getattr(e, "reason", "bad-bundle")) from e
    auth = authority(command_key, passphrase_env, envelopes)
    taken = [0]  # bytes the meter has confirmed: what an interrupted push says it got to

    with bar(image_file.name, len(data)) as bar_update:
        def progress(done: int, total: int | None = None) -> None:
            taken[0] = done
            bar_update(done, total)

        try:
            r = run(pushing.update(port, baud, timeout, data, mode_, auth, reset_wait, verdict_wait,
                                   check=not no_local_check, progress=progress, note=note))
        except KeyboardInterrupt:
            where = (f"the meter had confirmed {taken[0]} of {len(data)} bytes; a rerun resumes from its offset"
                     if taken[0] < len(data) else "the upload was complete; a rerun finds it there and goes on")
            raise KeyboardInterrupt(where) from None
    report = {"uploaded": r.uploaded, "seconds": round(r.seconds, 3), "rate": round(r.rate), "state": r.state,
              "version": r.version, "before": r.before, "retries": r.retries, "window": r.window,
              "timeouts": r.timeouts, "go_backs": r.go_backs, "stale": r.stale,
              "sent_bytes": r.sent_bytes}
    if mode_:
        report.update({"after": r.after, "slots": r.slots, "trial": r.trial,
                       "skipped_state_write": r.skipped_state_write})

    def text() -> str:
        lines = [f"accepted by the meter: version {r.version}, {r.uploaded} bytes in {r.seconds:.1f} s "
                 f"({r.rate / 1000:.1f} kB/s" + (f", {r.retries} lost frames sent again)" if r.retries else ")")]
        if mode_:
            running: dict = next((s_ for s_ in r.slots or [] if s_["active"]), {})
            kind = "confirmed" if running.get("confirmed") else "test boot, not yet confirmed"
            lines.append(f"meter now runs {r.after} ({kind}); it ran {r.before} before")
        return "\n".join(lines)

    emit(report, text)


@click.command()
@port_options
@json_option
@auth_options
def confirm(port: str, baud: int, timeout: float, as_json: bool, command_key: Path | None,
            passphrase_env: str | None, envelopes: tuple[Path, ...]) -> None:
    """Confirm the image the meter is test-booting (the app normally confirms itself after its self-test)."""
    auth = authority(command_key, passphrase_env, envelopes)

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            await pushing.confirm(link, auth)
            return await pushing.slots(link)

    rows = run(go())
    running: dict = next((r for r in rows if r["active"]), {})
    emit({"version": running.get("version"), "confirmed": bool(running.get("confirmed")), "slots": rows},
         f"running {running.get('version')}: " + ("confirmed" if running.get("confirmed") else "NOT confirmed"))


@click.command()
@port_options
@json_option
@auth_options
def reset(port: str, baud: int, timeout: float, as_json: bool, command_key: Path | None,
          passphrase_env: str | None, envelopes: tuple[Path, ...]) -> None:
    """Reset the meter (it saves its state first; a pending update is installed by the loader). A locked meter
    refuses unsigned resets in its first 30 s after boot (exit 5, busy)."""
    auth = authority(command_key, passphrase_env, envelopes)

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            await pushing.reset(link, auth)

    run(go())
    emit({"reset": True}, "reset requested")


@click.command()
@port_options
@json_option
@auth_options
def erase(port: str, baud: int, timeout: float, as_json: bool, command_key: Path | None,
          passphrase_env: str | None, envelopes: tuple[Path, ...]) -> None:
    """Erase the meter's staged upload (slot 1); the running app is never erased."""
    auth = authority(command_key, passphrase_env, envelopes)

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            await pushing.erase(link, auth)

    run(go())
    emit({"erased": True}, "staged upload erased")


@click.command()
@port_options
@click.option("--follow", "-f", is_flag=True, help="Keep printing until Ctrl-C.")
@click.option("--seconds", type=Finite(0.1, 86400), default=3.0, show_default=True,
              help="Without --follow: how long to listen.")
def console(port: str, baud: int, timeout: float, follow: bool, seconds: float) -> None:
    """Show the text the meter prints between SMP frames: the loader's and the app's log lines, a crashing app's
    traceback. SMP frames are left out; ota commands can run on the same port at the same time only on an
    emulated meter's extra console (the meter answers one request at a time)."""
    import asyncio

    serial_only(port, "ota console (the text a meter prints on its serial port)")

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            transport = link._transport
            assert transport is not None
            end = time.monotonic() + seconds
            note(f"listening on {port}" + (" (Ctrl-C to stop)" if follow else f" for {seconds:g} s"))
            while follow or time.monotonic() < end:
                text = await transport.read_serial()
                if text:
                    click.echo(text.decode("utf-8", "replace").replace("\r", ""), nl=False)
                else:
                    await asyncio.sleep(0.05)

    try:
        run(go())
    except KeyboardInterrupt:
        pass


@click.command()
@click.option("--port", required=True, callback=check_link, help=PORT_HELP)
@click.option("--baud", type=int, default=115200, show_default=True, callback=_baud, help="Line rate.")
@click.option("--board", "board_id", required=True, help="Board id from boards/ (what the meter is built on).")
@click.option("--lock", is_flag=True, help="Leave the meter locked: REPL and Ctrl-C off, signed commands only, "
              "development keys refused. Needs --trust.")
@click.option("--trust", "trust_file", type=IN_FILE,
              help="Trust store from `ota trust create` (default: the repository's development keys).")
@click.option("--meter-id", type=Text(r"[0-9A-Za-z._-]{1,32}", "meter id (1-32 letters, digits, . _ -)"),
              help="The meter's id (default: the MCU's unique id in hex).")
@click.option("--firmware", "firmware_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="Firmware source folder (default: this kit's firmware/).")
@json_option
def provision(port: str, baud: int, board_id: str, lock: bool, trust_file: Path | None, meter_id: str | None,
              firmware_dir: Path | None, as_json: bool) -> None:
    """Put the loader, board file, trust store, meter id and a first app onto a board freshly flashed with
    MicroPython, through its REPL; then reset it and check the app runs. Rerun it if it was interrupted.

    \b
    Exit 9 when the board's REPL is closed (a locked meter is never provisioned again), 11 when the board runs
    MicroPython for another MCU.
    """
    from meterkit import layout
    from meterkit.boards import BoardError, load_board

    from .. import provision as prov
    from ..link import check_port

    try:
        board = load_board(board_id)
    except BoardError as e:
        raise click.BadParameter(str(e), param_hint="--board") from e
    store = read_input(trust_file, "trust store") if trust_file else None
    if store is not None:
        from meterkit import trust as trust_store

        try:
            trust_store.read(store)
        except Exception as e:  # cbor2 and the store's checks raise several types for a file that is not one
            raise BadInput(f"{trust_file}: not a trust store from `ota trust create` ({type(e).__name__})") from e
    fw = firmware_dir or layout.FIRMWARE_DIR
    if not ((fw / "loader").is_dir() and (fw / "app").is_dir()):
        raise BadInput(f"{fw}: not a meterkit firmware folder (no loader/ and app/)")
    check_port(serial_only(port, "provisioning (through the board's REPL)"))
    with bar("provision", None) as progress:
        r = prov.provision(port, board, baud=baud, lock=lock, store=store, meter_id=meter_id,
                           firmware_dir=fw, progress=progress)
    r.app, _slots, _st, _console = run(pushing.after_reset(port, baud, 5.0))
    emit({"meter_id": r.meter_id, "board": r.board, "mode": r.mode, "files": r.files, "bytes": r.bytes,
          "seconds": round(r.seconds, 1), "app": r.app},
         f"provisioned meter {r.meter_id} ({r.board}, {r.mode}): {r.files} files, {r.bytes} bytes in "
         f"{r.seconds:.1f} s; it runs {r.app}")


COMMANDS = [info, echo, status, push, confirm, reset, erase, console, provision]
