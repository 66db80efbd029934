"""The meter's DLMS port on the host (a board with uarts.optical): a pty that a user's DLMS client opens as it would
open an optical probe head's USB serial port, and a loopback TCP listener the VM connects to at each boot
(emulator/device/_emu_optical.py: machine.UART(uarts.optical.id)). A thread pumps bytes both ways. While no VM is
connected (the board is off, between boots) bytes from the client are lost, as light on a dark port is."""

from __future__ import annotations

import os
import select
import socket
import threading
import tty


class OpticalPort(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="optical-port", daemon=True)
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no line discipline: HDLC frames are binary
        tty.setraw(self.master)
        self.path = os.ttyname(self._slave)  # kept open by us: reading the master end would fail while none is
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(2)
        self.tcp_port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None
        self.lost = 0  # client bytes that found no meter
        self.to_meter = 0  # client bytes passed to the meter's connection
        self.from_meter = 0  # meter bytes written to the pty
        self._stop_r, self._stop_w = os.pipe()

    def stop(self) -> None:
        try:
            os.write(self._stop_w, b"x")
        except OSError:
            pass
        self.join(timeout=2.0)
        for fd in (self.master, self._slave, self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.listener.close()
        if self.conn is not None:
            self.conn.close()

    def run(self) -> None:
        while True:
            watch: list[int] = [self.master, self.listener.fileno(), self._stop_r]
            if self.conn is not None:
                watch.append(self.conn.fileno())
            try:
                ready, _, _ = select.select(watch, [], [])
            except (OSError, ValueError):
                return
            if self._stop_r in ready:
                return
            if self.listener.fileno() in ready:
                conn, _ = self.listener.accept()
                if self.conn is not None:  # a new boot: the old VM is gone
                    self.conn.close()
                self.conn = conn
            if self.conn is not None and self.conn.fileno() in ready:
                try:
                    data = self.conn.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self.conn.close()
                    self.conn = None
                else:
                    self.from_meter += len(data)
                    self._write_all(self.master, data)
            if self.master in ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    data = b""
                if data:
                    if self.conn is None:
                        self.lost += len(data)
                    else:
                        try:
                            self.conn.sendall(data)
                            self.to_meter += len(data)
                        except OSError:
                            self.lost += len(data)

    def stats(self) -> dict:
        """The host side's counters (the status's optical_port)."""
        return {"to_meter": self.to_meter, "from_meter": self.from_meter, "lost": self.lost,
                "meter_connected": self.conn is not None}

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                select.select([], [fd], [], 1.0)
            except OSError:
                return
