# Test stand-in for emulator/device/_emu_bus.py: the configuration comes from the JSON file named by $MEMU_CONFIG,
# messages to the host are collected in `sent`, halts raise Halt. Lets tests run the VM-side models (_emu_grid,
# _emu_adc, _emu_bl0942, machine) inside the real MicroPython VM with a clock they drive (see _emu_clock here).
import json
import os

config = {}
with open(os.getenv("MEMU_CONFIG")) as _f:
    config.update(json.load(_f))
sent = []
_handlers = {}
halt_hooks = []
idle_hooks = []
stamp = None


class Halt(Exception):
    pass


def on(kind, fn):
    _handlers[kind] = fn


def send(msg):
    sent.append(json.loads(json.dumps(msg)))


dropped = 0  # as the real bus: shim work lost to a full heap


def deliver(msg):
    """A message from the host."""
    fn = _handlers.get(msg.get("t"))
    if fn is not None:
        fn(msg)


def pump():
    pass


def idle():
    for fn in idle_hooks:
        fn()


def halt(msg):
    for fn in halt_hooks:
        fn(msg)
    send(msg)
    raise Halt(msg)


def sock():
    return None


def with_room(fn, arg):
    """No shims' room to give back here: the test's VM heap is the model's alone."""
    fn(arg)


def shim_work(fn, arg):
    fn(arg)
