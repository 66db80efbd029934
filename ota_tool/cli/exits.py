"""ota's exit codes, defined once: `ota --help` and docs/field-team.md print this table (a test compares them),
and every failure maps to one of them by the library error's type (ota_tool/errors.py)."""

from __future__ import annotations

from enum import IntEnum

import click

from ..errors import (
    BadInput,
    BuildFailed,
    CheckDeferred,
    DeviceRefused,
    DeviceTimeout,
    ImageError,
    ImageRejected,
    KeyProblem,
    ModemError,
    NoDevice,
    NotAuthorised,
    RolledBack,
)
from ..errors import (
    Refused as CommandRefused,
)


class Exit(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    NO_DEVICE = 3
    TIMEOUT = 4
    REFUSED = 5
    KEY = 6
    BUILD = 7
    REJECTED = 8
    NOT_AUTHORISED = 9
    SIGNATURE = 10
    WRONG_TARGET = 11
    DOWNGRADE = 12
    NO_SPACE = 13
    COMMAND_REFUSED = 14
    ROLLED_BACK = 15
    MODEM = 16
    INTERRUPTED = 130


MEANING = {
    Exit.OK: "success",
    Exit.ERROR: "another error (the message names it)",
    Exit.USAGE: "usage: a bad option or argument, or an input file that is missing, unreadable or not what the "
                "option needs (the message names it)",
    Exit.NO_DEVICE: "no device: the port does not exist (the ports that do are listed) or is busy",
    Exit.TIMEOUT: "the meter did not answer in time, or the port answers without SMP (a REPL, a stopped app)",
    Exit.REFUSED: "the meter refused the request (its SMP error code is shown: busy, not found, ...), or had no "
                  "memory free to check an upload (it keeps it and checks it at its next start)",
    Exit.KEY: "key problem: not an Ed25519 key, a wrong or missing passphrase, or (keygen) it exists already",
    Exit.BUILD: "build problem (mpy-cross, board file, firmware tree)",
    Exit.REJECTED: "image rejected for another reason (named: truncated, bad-tlv, hash-mismatch, ...)",
    Exit.NOT_AUTHORISED: "not authorised: a locked meter needs a signed command (--key or --envelope), or it refused "
                         "the command's envelope (expired, wrong-meter, wrong-role, replayed, ...: named)",
    Exit.SIGNATURE: "image signature or signing key refused (unknown-key, bad-signature, development-key-refused)",
    Exit.WRONG_TARGET: "image for another board or loader (wrong-board, loader-api)",
    Exit.DOWNGRADE: "downgrade: security counter too low or too far ahead (counter-too-low, counter-step)",
    Exit.NO_SPACE: "no space: the image is larger than the meter's slot (oversize)",
    Exit.COMMAND_REFUSED: "the meter refused a supply, metering or credit command on its merits, or a top-up token "
                          "for any reason, its signature included (named: token-replayed, wrong-role, a bad "
                          "settings field, not allowed now, ...)",
    Exit.ROLLED_BACK: "the test boot of the pushed image failed and the meter rolled back (the reason is named)",
    Exit.MODEM: "the USB modem of a modem:// link cannot carry it (named: not answering, no SIM, not registered, "
                "registration denied, no data connection, cannot open its socket or send)",
    Exit.INTERRUPTED: "interrupted (Ctrl-C); a push resumes where it stopped when run again",
}

# an image policy's reason code -> exit code (any other reason: REJECTED)
REASON_EXIT = {
    "unknown-key": Exit.SIGNATURE, "bad-signature": Exit.SIGNATURE, "development-key-refused": Exit.SIGNATURE,
    "wrong-board": Exit.WRONG_TARGET, "loader-api": Exit.WRONG_TARGET,
    "counter-too-low": Exit.DOWNGRADE, "counter-step": Exit.DOWNGRADE,
    "oversize": Exit.NO_SPACE,
}


def rejection_exit(reason: str) -> Exit:
    return REASON_EXIT.get(reason, Exit.REJECTED)


def exit_for(e: BaseException) -> Exit:
    """The exit code of a failure, by its type."""
    if isinstance(e, KeyboardInterrupt):
        return Exit.INTERRUPTED
    if isinstance(e, click.exceptions.UsageError | click.exceptions.BadParameter):
        return Exit.USAGE
    if isinstance(e, ImageRejected | ImageError):
        return rejection_exit(e.reason)
    table: list[tuple[type, Exit]] = [
        (RolledBack, Exit.ROLLED_BACK), (BadInput, Exit.USAGE), (NoDevice, Exit.NO_DEVICE), (ModemError, Exit.MODEM),
        (DeviceTimeout, Exit.TIMEOUT), (NotAuthorised, Exit.NOT_AUTHORISED), (CommandRefused, Exit.COMMAND_REFUSED),
        (DeviceRefused, Exit.REFUSED), (CheckDeferred, Exit.REFUSED), (KeyProblem, Exit.KEY), (BuildFailed, Exit.BUILD),
    ]
    for kind, code in table:
        if isinstance(e, kind):
            return code
    return Exit.ERROR


def kind(e: BaseException) -> str:
    """A failure's name for --json: the exit code's name in lower case with dashes."""
    return exit_for(e).name.lower().replace("_", "-")


def table_text() -> str:
    """The exit-code table as `ota --help` prints it."""
    return "\n".join(f"{int(c):>3}  {MEANING[c]}" for c in Exit)


def table_markdown() -> str:
    """The exit-code table as docs/field-team.md holds it (tests compare the two)."""
    rows = ["| exit | meaning |", "|---|---|"]
    rows += [f"| {int(c)} | {MEANING[c]} |" for c in Exit]
    return "\n".join(rows)
