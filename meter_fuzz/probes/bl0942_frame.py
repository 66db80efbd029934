"""The BL0942 metering front end's UART frame parser (app/bl0942.py `parse`): what a noisy or hostile line between
the metering chip and the MCU can send. Documented error: FrameError (a ValueError).

The first input byte is a switch, so that mutated frames reach past the checksum: when it is odd and 23 bytes
follow, the probe puts the right checksum in the last byte before parsing (an attacker on the line can compute it)."""

from app import bl0942

ERRORS = (bl0942.FrameError,)
MODULES = ("app/bl0942.py",)
ADDRESS = 0


def run(data):
    if not data:
        return bl0942.parse(b"", ADDRESS)
    body = bytearray(data[1:])
    if data[0] & 1 and len(body) == 23:
        body[22] = bl0942.checksum(ADDRESS, memoryview(body)[:22])
    return bl0942.parse(bytes(body), ADDRESS)
