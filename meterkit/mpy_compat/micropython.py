"""CPython stand-in for MicroPython's `micropython` module, so firmware modules import unchanged on CPython (tests,
`ota verify`). Only on sys.path for CPython runs: inside the VM and on boards the real builtin module is used."""


def const(x):
    return x


_kbd = [3]


def kbd_intr(ch):
    _kbd[0] = ch


def schedule(fn, arg):
    fn(arg)
