# `sys` as the board's MicroPython port has it: the VM is the unix port, which reports sys.platform "linux"; a board
# reports its port ("esp32", "rp2"), and tools read it to tell which MCU a board is (`ota provision --board` refuses a
# board of another family). Every other attribute is the VM's own sys, through __getattr__ (nothing is copied: the
# shims' heap is the board's margin). The ROM installs this module as sys.modules["sys"], so `import sys` and
# `__import__('sys')` (the raw REPL) get it.
import sys as _sys

import _emu_bus

# per MCU family: sys.platform, and os.uname().machine as the port's generic firmware builds report it
# (MICROPY_HW_BOARD_NAME " with " MICROPY_HW_MCU_NAME)
_family = _emu_bus.config["board"]["mcu"]["family"]
if _family == "esp32":
    platform = "esp32"
    _MACHINE = "Generic ESP32 module with ESP32"
elif _family == "rp2040":
    platform = "rp2"
    _MACHINE = "Raspberry Pi Pico with RP2040"
else:  # a family the emulator does not know the port of: the VM's own
    platform = _sys.platform
    _MACHINE = None
del _family


def __getattr__(name):
    return getattr(_sys, name)
