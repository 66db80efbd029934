"""The host side of the input gate (recorded and replayed runs; the device side is emulator/device/_emu_gate.py).

In a recorded run (`meter-emu run --record FILE`) outside input does not reach the VM when it arrives: console bytes
from the line, `ctl` settings that go to the VM, power cuts, resets and the final stop are queued, the VM is told
"pending", and at its next point it stops and asks ("due": point, device µs). The queue is then delivered — console
bytes written to its stdin and waited for until readable, settings sent on the bus, a cut or a reset carried out —
and written to the recording with that stamp. A replay (`meter-emu replay FILE`) delivers the recorded inputs at the
same stamps; a stamp the firmware does not reach, or reaches at another device time, is the first divergence."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from .recording import Recorder, Recording
from .wire import CTRL_C, catches_sigint

if TYPE_CHECKING:
    from .meter import Meter

# bus messages that change what the firmware sees: gated. Not gated: "config", "query" (reads), "hold" (pacing only)
GATED = frozenset({"grid", "scenario", "input", "adc", "advance", "run", "speed", "drift", "cut_at"})
# console bytes the firmware may have unread after a hand-over: about a board's UART receive buffer. More waits in
# the queue for a later point (one hand-over per point: emulator/device/select.py), so the VM's stdin never fills up
# while it stands at a point (a window of two 2.8 KB upload chunks once filled the pty's 4 KB, and the hand-over's
# writes timed out: input lost, the upload stalled)
CONSOLE_MAX = 512
READABLE_TIMEOUT = 2.0  # wall seconds for written console bytes to become readable on the VM's side


class InputGate:
    def __init__(self, meter: Meter, recorder: Recorder | None = None, recording: Recording | None = None):
        self.meter = meter
        self.recorder = recorder
        self.recording = recording
        self.mode = "record" if recorder is not None else "replay"
        self.queue: list[tuple] = []  # ("console", bytes) | ("bus", msg) | ("cut", off, reply) | ("reset", kind, reply) | ("stop",)
        self.notified = False
        self.next = 0  # replay: index of the next recorded event
        self.delivered = 0
        self.divergence: str | None = None
        self.console_hash = hashlib.sha256()
        self.console_bytes = 0

    # -- what the VM is told at boot ---------------------------------------------------------------------------
    def config(self) -> dict:
        cfg: dict = {"mode": self.mode}
        if self.recording is not None:
            cfg["next"] = self.recording.stamp(self.meter.boots, self.next)
        return cfg

    def on_booting(self) -> None:
        self.notified = False
        if self.queue:
            self._notify()

    # -- record: what arrives is queued ------------------------------------------------------------------------
    def console(self, data: bytes) -> None:
        if self.mode == "replay":
            return  # a replay takes no input from the line
        if self.queue and self.queue[-1][0] == "console":
            self.queue[-1] = ("console", self.queue[-1][1] + data)
        else:
            self.queue.append(("console", data))
        self._notify()

    def add(self, item: tuple) -> None:
        self.queue.append(item)
        self._notify()

    def _notify(self) -> None:
        m = self.meter
        if not self.notified and m.bus is not None and m.powered and m.vm_ready:
            m.bus.send({"t": "pending"})
            self.notified = True

    def output(self, data: bytes) -> None:
        """What the board printed (the wire's copy), for the transcript's hash."""
        self.console_hash.update(data)
        self.console_bytes += len(data)

    # -- a point: deliver ----------------------------------------------------------------------------------------
    def on_due(self, msg: dict) -> None:
        m = self.meter
        n, us = int(msg["n"]), int(msg["us"])
        if self.mode == "record":
            items, actions = self._take_queue()
            assert self.recorder is not None
            self.recorder.delivery(m.boots, n, us, items)
        else:
            assert self.recording is not None
            ev = self.recording.events[self.next] if self.next < len(self.recording.events) else None
            if ev is None or "n" not in ev or (ev["boot"], ev["n"], ev["us"]) != (m.boots, n, us):
                want = "nothing" if ev is None else (
                    "power-on" if "n" not in ev else f"boot {ev['boot']} point {ev['n']} at {ev['us']} µs")
                self.divergence = (f"input {self.next + 1}: the recording has {want}; the meter asked at boot "
                                   f"{m.boots} point {n} at {us} µs")
                m.stopping = True
                return
            self.next += 1
            items = ev["in"]
            actions = self._actions_of(items)
        self.delivered += 1
        self._deliver(actions)

    def _take_queue(self) -> tuple[list[dict], list[tuple]]:
        """The queue as recorded items and the actions that carry them out (a Ctrl-C the firmware takes as an
        interrupt ends the hand-over: what follows it waits for the next point, as on a board)."""
        items: list[dict] = []
        actions: list[tuple] = []
        rest: list[tuple] = []
        q, self.queue = self.queue, []
        self.notified = False
        room = CONSOLE_MAX - self._console_unread()  # a board's receive buffer: what the firmware has not read yet
        for k, it in enumerate(q):
            if it[0] == "console":
                data: bytes = it[1]
                if room <= 0:  # the rest waits for a later point, as a flow-controlled line holds the sender back
                    rest = q[k:]
                    break
                if CTRL_C in data and self._interrupt_on():
                    before, _, after = data.partition(bytes([CTRL_C]))
                    if before:
                        items.append({"console": before.hex()})
                        actions.append(("console", before))
                    items.append({"interrupt": True})
                    actions.append(("interrupt",))
                    rest = ([("console", after)] if after else []) + q[k + 1:]
                    break
                if len(data) > room:
                    rest = [("console", data[room:])] + q[k + 1:]
                    data = data[:room]
                    items.append({"console": data.hex()})
                    actions.append(("console", data))
                    break
                room -= len(data)
                items.append({"console": data.hex()})
                actions.append(("console", data))
            elif it[0] == "bus":
                items.append({"bus": it[1]})
                actions.append(it)
            elif it[0] == "cut":
                items.append({"cut": it[1]})
                actions.append(it)
                rest = q[k + 1:]
                break
            elif it[0] == "reset":
                items.append({"reset": it[1]})
                actions.append(it)
                rest = q[k + 1:]
                break
            elif it[0] == "stop":
                items.append({"stop": True})
                actions.append(it)
                break
        self.queue = rest + self.queue
        return items, actions

    @staticmethod
    def _actions_of(items: list[dict]) -> list[tuple]:
        out: list[tuple] = []
        for item in items:
            kind, value = next(iter(item.items()))
            if kind == "console":
                out.append(("console", bytes.fromhex(value)))
            elif kind == "interrupt":
                out.append(("interrupt",))
            elif kind == "bus":
                out.append(("bus", value))
            elif kind == "cut":
                out.append(("cut", value, None))
            elif kind == "reset":
                out.append(("reset", value, None))
            elif kind == "stop":
                out.append(("stop",))
        return out

    def _console_unread(self) -> int:
        wire = self.meter.wire
        return 0 if wire is None else wire.device_unread()

    def _interrupt_on(self) -> bool:
        pid = self.meter.proc.pid if self.meter.proc else None
        return pid is not None and catches_sigint(pid)

    def _deliver(self, actions: list[tuple]) -> None:
        m = self.meter
        assert m.bus is not None and m.wire is not None
        resume: dict = {"t": "resume"}
        for act in actions:
            if act[0] == "console":
                m.wire.write_device(act[1], READABLE_TIMEOUT)
            elif act[0] == "interrupt":
                resume["interrupt"] = True
            elif act[0] == "bus":
                m.bus.send(act[1])
            elif act[0] == "cut":  # the VM halts at the power_cut message, inside the hand-over
                m.begin_cut(act[1], act[2])
                return
            elif act[0] == "reset":
                m.reset_now(act[1], act[2])
                return
            elif act[0] == "stop":
                m.begin_stop()
                return
        if self.queue:
            m.bus.send({"t": "pending"})
            self.notified = True
        if self.recording is not None:
            resume["next"] = self.recording.stamp(m.boots, self.next)
        m.bus.send(resume)

    # -- replay: power restored by hand, and the end -------------------------------------------------------------
    def power_on_due(self) -> int | None:
        """Replay: the RTC time (ns) a recorded manual power-on adds, when it is the next event."""
        if self.recording is None or self.next >= len(self.recording.events):
            return None
        ev = self.recording.events[self.next]
        if "power_on" in ev:
            self.next += 1
            return int(ev["power_on"])
        return None

    def finished(self) -> bool:
        return self.recording is not None and self.next >= len(self.recording.events)

