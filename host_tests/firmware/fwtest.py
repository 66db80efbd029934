"""Helpers for firmware tests that run unchanged on CPython (pytest) and inside the MicroPython VM.

Firmware test modules import only this module and firmware code: no pytest, no hypothesis, no typing at run time.
"""


def raises(exc_type, fn, *args, **kwargs):
    """Call fn(*args, **kwargs) and return the exception it raised; fail if it raised nothing or another type."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:  # noqa: B902 - the caller names the expected type
        return e
    raise AssertionError("expected %s from %r" % (exc_type.__name__, fn))


def float32(x):
    """Round x to the nearest IEEE single, as the ESP32 and RP2040 ports store every float."""
    from array import array

    return array("f", [x])[0]
