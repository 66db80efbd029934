"""Host side of the hardware bus: one Unix stream socket per VM boot, one JSON object per line each way."""

from __future__ import annotations

import json
import os
import queue
import socket
import threading


class Bus:
    """Listens on an abstract Unix socket; the VM of each boot connects once. Incoming messages go to `events` as
    ("bus", msg); the end of a connection as ("bus-closed", None)."""

    def __init__(self, events: queue.Queue):
        self.events = events
        self.name = f"meterkit-bus-{os.getpid()}-{os.urandom(4).hex()}"
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._srv.bind("\0" + self.name)
        self._srv.listen(2)
        self._conn: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def vm_address(self) -> str:
        return "@" + self.name  # the VM turns '@' into the abstract namespace's NUL

    def accept(self, timeout: float) -> bool:
        self._srv.settimeout(timeout)
        try:
            conn, _ = self._srv.accept()
        except TimeoutError:
            return False
        conn.settimeout(None)
        with self._lock:
            self._conn = conn
        threading.Thread(target=self._reader, args=(conn,), name="bus-reader", daemon=True).start()
        return True

    def _reader(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if not line:
                        continue
                    try:
                        msg = json.loads(line)
                    except ValueError:  # a line the VM cut short (out of heap mid-send, then ended): dropped
                        continue
                    self.events.put(("bus", msg))
        except OSError:
            pass
        self.events.put(("bus-closed", conn))

    def send(self, msg: dict) -> bool:
        """Send one message; False when no VM is connected (or the connection just broke)."""
        data = (json.dumps(msg) + "\n").encode()
        with self._lock:
            if self._conn is None:
                return False
            try:
                self._conn.sendall(data)
            except OSError:
                return False
            return True

    def drop(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except OSError:
                    pass
                self._conn = None

    def close(self) -> None:
        self.drop()
        self._srv.close()
