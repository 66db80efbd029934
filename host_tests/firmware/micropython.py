"""CPython stand-in for MicroPython's `micropython` module, so firmware modules import unchanged in CPython tests.
Only on sys.path for CPython runs: inside the VM the real builtin module wins."""


def const(x):
    return x


_kbd = [3]


def kbd_intr(ch):
    _kbd[0] = ch


def schedule(fn, arg):
    fn(arg)
