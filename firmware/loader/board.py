# The board definition (boards/<id>.json, written to meter/board.json at provisioning): pins, UARTs, ADC, flash
# geometry, default calibration. Read once and kept.
from micropython import const

from loader import store, strict

PATH = "meter/board.json"
_DEPTH = const(6)  # a board file nests 4 deep (boards/SCHEMA.md); deeper is damage
_board = None


def load():
    """The board definition. ValueError when there is none, or when it is damaged past its "id" in a way the
    start-up's arithmetic would not survive or would get wrong (a number no float holds, 10**400 amps; NaN or an
    infinity; nesting deeper than any board file's): a meter cannot start without its pins and ratings, and nothing
    can stand in for them (docs/SECURITY.md)."""
    global _board
    if _board is None:
        b = store.read_json(PATH)
        if not isinstance(b, dict) or "id" not in b:
            raise ValueError("no board definition at " + PATH)
        if not _sound(b, 0):
            raise ValueError("damaged board definition at " + PATH + ": a number out of range, or nested too deep")
        _board = b
    return _board


def _sound(v, depth):
    """Every number in the JSON value v is one every port's float holds, finite (strict.is_number); nested at most
    _DEPTH."""
    t = type(v)
    if t is dict:
        v = v.values()
    elif t is not list:
        return (t is not int and t is not float) or strict.is_number(v)
    if depth >= _DEPTH:
        return False
    for x in v:
        if not _sound(x, depth + 1):
            return False
    return True
