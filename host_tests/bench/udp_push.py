"""Benchmark (issue 18): pushing an image over SMP over UDP into the real app of an emulated meter with its NB-IoT
module (`meter-emu run --modem --speed 1`: device time is wall time), through each link profile of the emulator's
radio model (emulator/device/_emu_link.py), with `ota push` and with `smpmgr image upload`.

The meter is set up as the e2e test does (host_tests/emulator/test_network_e2e.py): a signed `meter.headend` names
127.0.0.1:PORT, and from its next boot the app serves the loader's image group over UDP to that address:port only
(a BC660K socket answers only the address it was opened to). Per profile and image:
- `ota push IMAGE --port udp://METER:1337?from=PORT` (upload only, no install): its wall time until the meter's
  verdict (accepted: the image verified), and its own counts (chunks sent again, timeouts, go-backs, bytes sent);
- `smpmgr --ip RELAY image upload IMAGE`, with its defaults (--mtu 1500, --timeout 2), with --mtu 540 (512-byte
  datagrams, the module's cap) and with --mtu 540 and each --timeout given. smpmgr always sends to port 1337 of the
  address it is given, from an ephemeral port: it reaches the meter through `HeadEndRelay`, which is what a real
  head-end gateway is on an operator's private APN (the meter's one configured peer, forwarding the back office's
  datagrams to the meter and the meter's answers back). The relay counts the datagrams and bytes each way.
The staged upload is erased over the console between runs (the meter would otherwise resume a finished upload).

The link's theoretical minimum: downlink bytes x 8 / downlink rate + one RTT (the profile's mean), for the image's
bytes and for the wire bytes of one pass of ota's chunks (SMP header and CBOR fields included; the link model counts
a datagram's payload). Ratio = wall time / minimum. Before each run an echo wakes the radio (after 20 s without
traffic it idles and the next datagram waits a 2-15 s reconnection).

Figures and what they say: docs/BENCHMARKS.md "NB-IoT, first steps". At --speed 1 the whole sweep takes about 1.5 h
(nb1-edge's 2 kbit/s: about 20 min per image for ota alone).

Usage: python -m host_tests.bench.udp_push [--profile P ...] [--image reference|100k ...] [--smpmgr-timeout S ...]
                                            [--no-smpmgr] [--no-ota] [--ota-timeout S] [--keep DIR] [--json F]"""

from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from host_tests.bench.ota_push import build_image, reference_firmware
from host_tests.emu import BIN, Emulator, ota

ROOT = Path(__file__).resolve().parents[2]
COMMAND_KEY = ROOT / "keys" / "dev" / "command-DEVELOPMENT-ONLY-ed25519.pem"
BOARD = "esp32_devkitc"
PROFILES = ("nb2-good", "nb1-good", "nb1-edge")
DATAGRAM = 512  # the BC660K's cap per datagram: the meter's buf_size over UDP
SMPMGR_MTU = DATAGRAM + 28  # smpclient subtracts IPv4 + UDP headers from its --mtu
BIG_IMAGE = 100_000  # bytes, about: the "100 kB image"
SMP_PORT = 1337


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relay_address() -> str:
    """A loopback address of the relay's own, outside the emulator's meters' 127.64-253 range, with 1337 free."""
    for k in range(64):
        addr = f"127.1.{(os.getpid() >> 8) & 0xFF}.{1 + (os.getpid() + k) % 250}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((addr, SMP_PORT))
                return addr
            except OSError:
                continue
    raise RuntimeError("no free loopback address for the head-end relay")


class HeadEndRelay:
    """A head-end gateway in miniature: listens on `listen` (ADDR:1337, where SMP clients such as smpmgr send),
    forwards each datagram to `meter` from `headend` (the one address:port the meter's module answers), and each
    datagram from the meter back to the client that sent last. Counts datagrams and bytes each way ("down": towards
    the meter), and the furthest image upload offset the meter reported (`top_off`)."""

    def __init__(self, listen: tuple[str, int], headend: tuple[str, int], meter: tuple[str, int]):
        self.meter = meter
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(listen)
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(headend)
        self.client: tuple[str, int] | None = None
        self.down = [0, 0]  # datagrams, bytes
        self.up = [0, 0]
        self.top_off = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HeadEndRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.front.close()
        self.back.close()

    def _note_reply(self, data: bytes) -> None:
        # an image upload reply (write response, group 1, command 1): {"off": n, ...}
        if len(data) > 8 and data[0] & 7 == 3 and data[4:6] == b"\x00\x01" and data[7] == 1:
            try:
                import cbor2

                off = cbor2.loads(data[8:]).get("off")
            except Exception:
                return
            if isinstance(off, int) and off > self.top_off:
                self.top_off = off

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.front, selectors.EVENT_READ)
        sel.register(self.back, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.1):
                    s = key.fileobj
                    try:
                        data, src = s.recvfrom(65535)  # type: ignore[union-attr]
                    except OSError:
                        continue  # an ICMP error from an earlier send
                    if s is self.front:
                        self.client = src
                        self.down[0] += 1
                        self.down[1] += len(data)
                        self.back.sendto(data, self.meter)
                    elif src == self.meter and self.client is not None:
                        self.up[0] += 1
                        self.up[1] += len(data)
                        self._note_reply(data)
                        self.front.sendto(data, self.client)
        finally:
            sel.close()


def wire_bytes(image: bytes, datagram: int = DATAGRAM) -> tuple[int, int]:
    """(chunks, bytes) of one pass of an upload of `image` in `datagram`-byte requests, as ota (and smpclient) size
    them: smpclient's _maximize_upload_packet with the transport's cap."""
    from hashlib import sha256

    from smpclient import SMPClient
    from smpclient.requests.image_management import ImageUploadWrite

    from ota_tool.smp_udp import SmpUdpTransport

    client = SMPClient(SmpUdpTransport(datagram_max=datagram), "127.0.0.1")
    off, n, total = 0, 0, 0
    while off < len(image):
        req = (ImageUploadWrite(off=0, data=b"", image=0, len=len(image), sha=sha256(image).digest()) if off == 0
               else ImageUploadWrite(off=off, data=b""))
        req = client._maximize_upload_packet(req, image)
        total += len(bytes(req))
        off += len(req.data)
        n += 1
    return n, total


def minimum(nbytes: int, prof: dict) -> float:
    lo, hi = prof["rtt_s"]
    return nbytes * 8 / (prof["down_kbps"] * 1000) + (lo + hi) / 2


def big_firmware(fw: Path, ref: Path, tmp: Path, target: int) -> Path:
    """The reference firmware with more of the reference app's modules added again (`ref2_NAME.py`), until its
    image is about `target` bytes."""
    big = tmp / "fw-big"
    shutil.copytree(fw, big)
    img = build_image(big, BOARD, tmp / "probe.img")
    mods = sorted((ref / "py" / "app").glob("*.py"), key=lambda p: -p.stat().st_size)
    mpy = {p.stem: (ref / "mpy" / "app" / f"{p.stem}.mpy").stat().st_size for p in mods}
    short = target - img.stat().st_size
    for p in mods:
        if short <= 0:
            break
        if mpy[p.stem] > short + 4000:
            continue
        shutil.copy2(p, big / "app" / f"ref2_{p.name}")
        short -= mpy[p.stem]
    return big


def setup_meter(tmp: Path, name: str) -> tuple[Emulator, int]:
    emu = Emulator(tmp / name, board=BOARD, speed="1", seed=7, args=("--modem",))
    emu.wait_boots(1)
    port = free_udp_port()
    p = ota("meter", "network", "--port", emu.console, "--headend", f"127.0.0.1:{port}", "--key", COMMAND_KEY,
            "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    p = ota("reset", "--port", emu.console)
    assert p.returncode == 0, p.stdout + p.stderr
    emu.wait_boots(2, timeout=60)
    emu.wait_status(lambda s: s["device"].get("modem", {}).get("sockets") == [0], timeout=120,
                    what="the head-end's socket")
    return emu, port


def update_state(emu: Emulator) -> str | None:
    p = ota("status", "--port", emu.console, "--json", "--timeout", "5")
    return json.loads(p.stdout).get("update") if p.returncode == 0 else None


def erase(emu: Emulator) -> str | None:
    """Erase the staged upload over the console; the error when the meter does not answer (its app stopped)."""
    p = ota("erase", "--port", emu.console, "--key", COMMAND_KEY, "--json", timeout=60)
    if p.returncode == 0:
        return None
    try:
        return json.loads(p.stdout).get("message")
    except json.JSONDecodeError:
        return (p.stdout + p.stderr)[-300:]


def smpmgr_error(text: str) -> str:
    """The line of smpmgr's traceback that names the failure (its progress bar and frames say little)."""
    lines = [ln.strip(" │╭╰─") for ln in text.splitlines()]
    hits = [ln for ln in lines if ("Error" in ln or "Exception" in ln or "Timeout" in ln) and "File " not in ln]
    return " ".join((hits[-1] if hits else " ".join(text.split())[-300:]).split())[:300]


def wake(url: str, timeout: float) -> float:
    t0 = time.monotonic()
    p = ota("echo", "--port", url, "--timeout", timeout, "--json", "wake", timeout=timeout * 4 + 30)
    assert p.returncode == 0, p.stdout + p.stderr
    return round(time.monotonic() - t0, 2)


def run_ota(emu: Emulator, port: int, img: Path, timeout: float, limit: float) -> dict:
    udp = emu.endpoints["udp"]
    url = f"udp://{udp['address']}:{udp['port']}?from={port}"
    woke = wake(url, timeout)
    t0 = time.monotonic()
    p = ota("push", img, "--port", url, "--timeout", timeout, "--json", timeout=limit)
    wall = time.monotonic() - t0
    res: dict = {"wall_s": round(wall, 2), "exit": p.returncode, "wake_echo_s": woke}
    try:
        r = json.loads(p.stdout)
    except json.JSONDecodeError:
        r = {"stderr": p.stderr[-400:]}
    if p.returncode == 0:
        res.update({k: r.get(k) for k in ("seconds", "retries", "timeouts", "go_backs", "stale", "sent_bytes",
                                          "window", "state")})
        res["upload_s"] = res.pop("seconds")
    else:
        res["error"] = f"{r.get('error')}: {r.get('message')}" if "message" in r else (r.get("stderr") or p.stderr[-400:])
    return res


def run_smpmgr(emu: Emulator, port: int, img: Path, extra: list[str], limit: float, timeout: float) -> dict:
    udp = emu.endpoints["udp"]
    addr = relay_address()
    with HeadEndRelay((addr, SMP_PORT), ("127.0.0.1", port), (udp["address"], udp["port"])) as relay:
        woke = wake(f"udp://{addr}:{SMP_PORT}", timeout)
        relay.down, relay.up = [0, 0], [0, 0]
        t0 = time.monotonic()
        try:
            p = subprocess.run([str(BIN / "smpmgr"), "--ip", addr, *extra, "image", "upload", str(img)],
                               capture_output=True, text=True, timeout=limit)
            rc, err = p.returncode, smpmgr_error(p.stdout + p.stderr)
        except subprocess.TimeoutExpired:
            rc, err = None, f"still running after {limit:.0f} s: stopped"
        wall = time.monotonic() - t0
        res: dict = {"wall_s": round(wall, 2), "exit": rc, "wake_echo_s": woke,
                     "down_datagrams": relay.down[0], "down_bytes": relay.down[1],
                     "up_datagrams": relay.up[0], "up_bytes": relay.up[1], "reached_byte": relay.top_off}
    if rc == 0:
        end = time.monotonic() + 120
        while time.monotonic() < end and (st := update_state(emu)) in ("receiving", "verifying", None):
            time.sleep(0.2)
        res["state"] = st
        res["to_verified_s"] = round(time.monotonic() - t0, 2)
    else:
        res["error"] = err
    return res


def main() -> None:
    from emulator.device import _emu_link as linkmodel

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", action="append", dest="profiles", choices=PROFILES)
    ap.add_argument("--image", action="append", dest="images", choices=["reference", "100k"])
    ap.add_argument("--smpmgr-timeout", action="append", type=float, dest="smpmgr_timeouts",
                    help="smpmgr --timeout values to try besides its default (with --mtu 540); default 5 and 10")
    ap.add_argument("--no-smpmgr", action="store_true")
    ap.add_argument("--no-ota", action="store_true")
    ap.add_argument("--ota-timeout", type=float, metavar="S",
                    help="ota's --timeout (each answer; default 20 s, 180 s on nb1-edge)")
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="Work in DIR and keep it (the meters' logs and states).")
    args = ap.parse_args()
    profiles = args.profiles or list(PROFILES)
    images = args.images or ["reference", "100k"]
    timeouts = args.smpmgr_timeouts or [5.0, 10.0]
    load = os.getloadavg()
    out: dict = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
                 "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "board": BOARD,
                 "load_at_start": [round(x, 2) for x in load], "profiles": {}}
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        if args.keep:
            tmp = args.keep
            tmp.mkdir(parents=True, exist_ok=True)
        fw, ref, _ = reference_firmware(tmp)
        imgs = {}
        if "reference" in images:
            imgs["reference"] = build_image(fw, BOARD, tmp / "reference.img")
        if "100k" in images:
            imgs["100k"] = build_image(big_firmware(fw, ref, tmp, BIG_IMAGE), BOARD, tmp / "big.img")
        for prof_name in profiles:
            prof = linkmodel.PROFILES[prof_name]
            edge = prof["down_kbps"] < 10
            # ota's --timeout (each answer, its retransmissions inside): on nb1-edge an RTT of 3-10 s, an idle radio's
            # reconnection of 2-15 s and 1 kbit/s up; 60 s was not enough for its first reads (docs/BENCHMARKS.md)
            timeout = args.ota_timeout or (180.0 if edge else 20.0)
            emu, port = setup_meter(tmp, f"meter-{prof_name}")
            try:
                emu.ctl("set", f"link.profile={prof_name}")
                res: dict = {"down_kbps": prof["down_kbps"], "rtt_s": list(prof["rtt_s"]), "loss": prof["loss"],
                             "images": {}}
                for name, img in imgs.items():
                    data = img.read_bytes()
                    chunks, wire = wire_bytes(data)
                    r: dict = {"image_bytes": len(data), "chunks": chunks, "wire_bytes": wire,
                               "min_image_s": round(minimum(len(data), prof), 2),
                               "min_wire_s": round(minimum(wire, prof), 2)}
                    limit = max(300.0, 8 * r["min_wire_s"])
                    if not args.no_ota:
                        o = run_ota(emu, port, img, timeout, limit * 2)
                        if o["exit"] == 0:
                            o["ratio_image"] = round(o["wall_s"] / r["min_image_s"], 2)
                            o["ratio_wire"] = round(o["wall_s"] / r["min_wire_s"], 2)
                        r["ota"] = o
                        print(json.dumps({prof_name: {name: {"ota": o}}}), flush=True)
                        if (lost := erase(emu)) is not None:
                            r["meter_lost"] = lost
                            res["images"][name] = r
                            break
                    if not args.no_smpmgr:
                        cases = [("smpmgr_defaults", []), ("smpmgr_mtu540", ["--mtu", str(SMPMGR_MTU)])]
                        cases += [(f"smpmgr_mtu540_t{t:g}", ["--mtu", str(SMPMGR_MTU), "--timeout", f"{t:g}"])
                                  for t in timeouts]
                        for case, extra in cases:
                            s = run_smpmgr(emu, port, img, extra, limit, timeout)
                            if s["exit"] == 0 and "ota" in r and r["ota"]["exit"] == 0:
                                s["ota_faster_x"] = round(s["wall_s"] / r["ota"]["wall_s"], 2)
                            r[case] = s
                            print(json.dumps({prof_name: {name: {case: s}}}), flush=True)
                            if (lost := erase(emu)) is not None:
                                r["meter_lost"] = lost
                                break
                        if "meter_lost" in r:
                            res["images"][name] = r
                            break
                    res["images"][name] = r
                modem = emu.status()["device"].get("modem", {})
                res["module_stats"] = modem.get("stats")
                res["reconnects"] = modem.get("reconnects")
            finally:
                emu.stop()
            out["profiles"][prof_name] = res
            print(json.dumps({prof_name: res}, indent=1), flush=True)
    out["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
