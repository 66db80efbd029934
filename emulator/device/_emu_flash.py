# The board's flash, as a MicroPython block device backed by a file on the host (littlefs mounted at '/').
# NOR semantics: erase sets a block to 0xFF, programming can only clear bits. An erase costs the board's
# flash.erase_us of device time, a program flash.page_program_us per 256-byte page. Every program and erase counts as one
# flash operation; the host can cut power right before operation N, optionally letting a prefix of it land (torn).
import _emu_bus as bus
import _emu_clock as clock

_geo = bus.config["board"]["flash"]
ERASE_US = int(_geo.get("erase_us", 0))  # the chip's typical sector erase and page program times: device time
PAGE_US = int(_geo.get("page_program_us", 0))

_ops = 0
_cut_at = None
_torn = 0


class Flash:
    def __init__(self, path, block_size, block_count):
        self._f = open(path, "r+b")
        self._bs = block_size
        self._n = block_count
        # a board's flash driver works outside the GC heap: the shim allocates its buffers once, so flash work
        # neither takes heap from the firmware nor fragments it (a 4 KB allocation per erase once failed there)
        self._blank = b"\xff" * block_size
        self._old = bytearray(block_size)

    def readblocks(self, block, buf, off=0):
        self._f.seek(block * self._bs + off)
        self._f.readinto(buf)

    def writeblocks(self, block, buf, off=None):
        if off is None:  # the simple interface erases first
            self._erase(block)
            off = 0
        addr = block * self._bs + off
        n = len(buf)
        new = memoryview(self._old)[:n] if n <= self._bs else memoryview(bytearray(n))
        self._f.seek(addr)
        self._f.readinto(new)
        for i in range(n):
            new[i] &= buf[i]
        self._operation(addr, new)
        self._f.seek(addr)
        self._f.write(new)
        clock.skip(((addr + n + 255) // 256 - addr // 256) * PAGE_US)  # each 256-byte page the write touches

    def _erase(self, block):
        addr = block * self._bs
        self._operation(addr, self._blank)
        self._f.seek(addr)
        self._f.write(self._blank)
        clock.skip(ERASE_US)

    def ioctl(self, op, arg):
        if op == 4:
            return self._n
        if op == 5:
            return self._bs
        if op == 6:
            self._erase(arg)
            return 0
        return 0

    def _operation(self, addr, data):
        global _ops
        bus.pump()
        _ops += 1
        if _cut_at is not None and _ops >= _cut_at:
            if _torn:
                # a prefix of the interrupted operation reaches the cells
                n = _torn if _torn < len(data) else len(data) // 2
                self._f.seek(addr)
                self._f.write(data[:n])
            bus.halt({"t": "cut", "op": _ops})


def ops():
    return _ops


def arm(msg):
    """Cut power right before the n-th flash operation from now; `torn` bytes of it land first."""
    global _cut_at, _torn
    _cut_at = _ops + int(msg["n"])
    _torn = int(msg.get("torn", 0))


bus.on("cut_at", arm)


def _carry(msg):
    # an armed cut not reached before a reset continues counting in the next boot
    if _cut_at is not None and msg.get("t") == "reset":
        msg["cut_left"] = _cut_at - _ops


bus.halt_hooks.append(_carry)
