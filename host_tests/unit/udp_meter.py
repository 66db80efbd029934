"""An interim SMP-over-UDP meter for the host link's tests, until the emulated meter serves UDP itself: a real UDP
socket on 127.0.0.1 whose datagrams go to the firmware's own SMP dispatch (loader/smp.py with the os and image
groups, run on CPython in a scratch flash folder), behind a seeded fault injector that loses, duplicates, delays
and so reorders datagrams in both directions. One SMP frame per datagram, as STANDARDS.md has it.

What it does not model (the emulator's link model will): rates, the radio's idle/reconnect, NAT, the modem."""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

import cbor
from loader import LOADER_API, image_group, smp, staging, trust
from loader.os_group import OsGroup

BOARD = {
    "id": "esp32_devkitc",
    "name": "ESP32-DevKitC",
    "mcu": {"arch": "xtensawin"},
    "flash": {"block_size": 4096, "block_count": 512},
}
FIXTURES = Path(__file__).resolve().parents[1] / "firmware" / "fixtures"


@dataclass
class Faults:
    """Each datagram, either way: lost with `loss`, else sent twice with `dup`, each copy delayed by a uniform draw
    from [0, `delay`] s (copies overtake each other: reordering). `replay`: before each reply the meter sends the
    reply it sent before (a stale answer the client must drop). Every draw from one seeded generator."""

    seed: int = 0
    loss: float = 0.0
    dup: float = 0.0
    delay: float = 0.0
    replay: bool = False
    drop_requests: set[int] = field(default_factory=set)  # the n-th request datagrams (from 1) lost, whatever else

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def copies(self) -> list[float]:
        """Delays of the copies of one datagram (none: lost)."""
        if self.rng.random() < self.loss:
            return []
        n = 2 if self.rng.random() < self.dup else 1
        return [self.rng.uniform(0, self.delay) if self.delay else 0.0 for _ in range(n)]


class Ctx:
    """What the os and image groups ask of the meter (loader/context.py on a board)."""

    meter_id = "m-udp"
    mode = "development"
    board = BOARD
    started_ms = 0
    app_version = "0.1.0"

    def __init__(self) -> None:
        self.server = smp.Server()
        self.refused = ""
        self.slot = "a"
        self.test_boot = False
        self.facts = None
        self.resets: list[bool] = []

    def request_reset(self, force: bool = False) -> None:
        self.resets.append(force)


def flash(root: Path) -> None:
    """A meter's files in `root` (the cwd the groups see): slot a runs 0.1.0, the development image key trusted."""
    app = {"app/__init__.py": b"VERSION = '0.1.0'\n", "app/main.py": b"def run(ctx):\n    pass\n"}
    for p, b in app.items():
        (root / "slots" / "a" / p).parent.mkdir(parents=True, exist_ok=True)
        (root / "slots" / "a" / p).write_bytes(b)
    entries = [{"path": p, "size": len(b), "sha256": hashlib.sha256(b).digest()} for p, b in sorted(app.items())]
    (root / "slots" / "a" / "manifest.cbor").write_bytes(
        cbor.dumps({"format": 1, "board": BOARD["id"], "version": "0.1.0", "loader_api": LOADER_API, "files": entries})
    )
    (root / "meter").mkdir(exist_ok=True)
    (root / "meter" / "slots.json").write_bytes(b'{"active": "a"}')
    (root / trust.PATH).write_bytes((FIXTURES / "trust_v1.cbor").read_bytes())


class UdpMeter(asyncio.DatagramProtocol):
    """The firmware's SMP server on a UDP socket. Call from inside a running loop with the cwd at the flash root
    (flash() first). `requests`: every request datagram that reached the server; `sizes`: their sizes."""

    def __init__(self, faults: Faults | None = None, buf_count: int | None = None):
        self.faults = faults or Faults()
        self.ctx = Ctx()
        OsGroup(self.ctx).register(self.ctx.server)
        self.images = image_group.ImageGroup(self.ctx)
        self.images.register(self.ctx.server)
        if buf_count is not None:  # what a UDP server with a queue of datagrams would report
            self.ctx.server.register(
                smp.GROUP_OS, 6, lambda req: {"buf_size": smp.BUF_SIZE, "buf_count": buf_count}, write=False
            )
        self.requests: list[bytes] = []
        self.arrived = 0
        self._last: bytes | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.address: tuple[str, int] = ("127.0.0.1", 0)

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.address = self.transport.get_extra_info("sockname")[:2]
        return f"udp://{self.address[0]}:{self.address[1]}"

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _later(self, delay: float, fn, *args) -> None:
        asyncio.get_running_loop().call_later(delay, fn, *args)

    def datagram_received(self, data: bytes, addr) -> None:
        self.arrived += 1
        if self.arrived in self.faults.drop_requests:
            return
        for d in self.faults.copies():
            self._later(d, self._serve, bytes(data), addr)

    def _serve(self, frame: bytes, addr) -> None:
        self.requests.append(frame)
        rsp = self.ctx.server.handle(frame)
        if rsp is None:
            return
        if self.faults.replay and self._last is not None:
            self._send(self._last, addr)
        self._last = rsp
        for d in self.faults.copies():
            self._later(d, self._send, rsp, addr)
        after, self.ctx.server.after_reply = self.ctx.server.after_reply, None
        if after is not None:  # the verification of a complete upload, once its reply is on its way (the loop
            after()  # is held meanwhile, as the meter's console task is)

    def _send(self, data: bytes, addr) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    def staged(self) -> bytes:
        try:
            return Path(staging.STAGING).read_bytes()
        except OSError:
            return b""


class MeterThread:
    """A UdpMeter on its own event loop in a thread, for commands that run their own loop (the ota CLI in process).
    `with MeterThread(faults) as url:`; the cwd must be the flash root (flash() first)."""

    def __init__(self, faults: Faults | None = None, buf_count: int | None = None):
        import threading

        self.meter = UdpMeter(faults, buf_count)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.url = ""

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.url = self.loop.run_until_complete(self.meter.start())
        self._ready.set()
        self.loop.run_forever()
        self.meter.close()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def __enter__(self) -> str:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the UDP meter did not start")
        return self.url

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
