# `os` as the board's port has it: the VM's own os (through __getattr__) plus os.uname(), which the unix port lacks
# and the esp32 and rp2 ports report as (sysname, nodename, release, version, machine), e.g. ('rp2', 'rp2',
# '1.29.0', 'v1.29.0 on 2026-07-05', 'Raspberry Pi Pico with RP2040'). Installed by the ROM as sys.modules["os"].
import os as _os

_uname = None


def uname():
    global _uname
    if _uname is None:  # built at the first call: the shims' heap at start-up is the board's margin
        from collections import namedtuple

        import _emu_sys

        impl = _emu_sys.implementation
        v = impl.version
        release = "%d.%d.%d" % v[:3]
        ver = "v" + release + ("-" + v[3] if len(v) > 3 and v[3] else "")
        if " on " in _emu_sys.version:  # "3.4.0; MicroPython v1.29.0 on 2026-07-05": the build date
            ver += " on " + _emu_sys.version.split(" on ")[-1]
        t = namedtuple("uname_result", ("sysname", "nodename", "release", "version", "machine"))
        _uname = t(_emu_sys.platform, _emu_sys.platform, release, ver, _emu_sys._MACHINE or impl._machine)
    return _uname


def __getattr__(name):
    return getattr(_os, name)
