"""Control channel of a running emulator: one JSON request and one JSON reply per connection, on an abstract Unix
socket named in endpoints.json. The server hands requests to the emulator's event loop and waits for its answer."""

from __future__ import annotations

import errno
import json
import queue
import socket
import threading

from .errors import NotRunning
from .statedir import socket_address

REPLY_TIMEOUT = 30.0
RUN_MAX_S = 10 * 366 * 86400  # device seconds a run (`--for`, `ctl run --for`) may span: ten years
# `ctl time --advance` jumps the board's ticks with no code running between: a jump beyond half of ticks_ms's 2**30 ms
# period (6.2 days) makes every ticks_diff in the firmware wrong, which no board's clock does. A day is the most; a
# longer time goes by `ctl run --for`, which runs the firmware through it.
ADVANCE_MAX_S = 86400


class ControlServer(threading.Thread):
    def __init__(self, address: str, events: queue.Queue):
        super().__init__(name="control", daemon=True)
        self.address = address
        self.events = events
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._srv.bind(socket_address(address))
        except OSError as e:
            from .errors import StateBusy

            raise StateBusy(f"control address {address} is taken: is another meter-emu running on this state?") from e
        self._srv.listen(8)
        self._running = True

    def run(self) -> None:
        while self._running:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                line = conn.makefile("rb").readline()
                req = json.loads(line)
                if not isinstance(req, dict):
                    raise ValueError("request must be a JSON object")
            except (OSError, ValueError) as e:
                conn.sendall((json.dumps({"ok": False, "error": f"bad request: {e}"}) + "\n").encode())
                return
            box: queue.Queue = queue.Queue()
            self.events.put(("ctl", (req, box.put)))
            try:
                rep = box.get(timeout=REPLY_TIMEOUT)
            except queue.Empty:
                rep = {"ok": False, "error": "the emulator did not answer in time"}
            try:
                conn.sendall((json.dumps(rep) + "\n").encode())
            except OSError:
                pass

    def stop(self) -> None:
        self._running = False
        try:
            self._srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._srv.close()


def request(address: str, req: dict, timeout: float = REPLY_TIMEOUT + 5) -> dict:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(socket_address(address))
    except OSError as e:
        s.close()
        if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
            raise NotRunning(f"no emulator is running: nothing listens at {address} (an emulator that ended without "
                             "withdrawing its endpoints.json, e.g. killed)") from None
        raise NotRunning(f"no emulator answers at {address} ({e.strerror or e})") from None
    with s:
        try:
            s.sendall((json.dumps(req) + "\n").encode())
            line = s.makefile("rb").readline()
        except OSError as e:  # a timeout, a reset connection
            raise NotRunning(f"the emulator at {address} did not answer ({e.strerror or e})") from None
    if not line:
        raise NotRunning("the emulator closed the control connection without answering")
    try:
        rep = json.loads(line)
    except ValueError:
        rep = None
    if not isinstance(rep, dict):
        raise NotRunning(f"something other than meter-emu answers at {address}")
    return rep
