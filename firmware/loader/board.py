# The board definition (boards/<id>.json, written to meter/board.json at provisioning): pins, UARTs, ADC, flash
# geometry, default calibration. Read once and kept.
from loader import store

PATH = "meter/board.json"
_board = None


def load():
    global _board
    if _board is None:
        b = store.read_json(PATH)
        if not isinstance(b, dict) or "id" not in b:
            raise ValueError("no board definition at " + PATH)
        _board = b
    return _board
