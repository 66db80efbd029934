"""The ota library's errors: one type per thing a caller may act on. The library never exits and knows no exit
codes; the CLI maps these types to its exit codes (ota_tool/cli/exits.py)."""

from __future__ import annotations


class OtaError(Exception):
    """Anything the library cannot do, with a message that names the problem."""


class BadInput(OtaError):
    """A file or value given to the library is not what it must be (the message names it)."""


class KeyProblem(OtaError):
    """A key file that cannot be used: missing, not an Ed25519 key, wrong passphrase, exists already."""


class BuildFailed(OtaError):
    """The image could not be built (mpy-cross, the board file, the firmware tree)."""


class NoDevice(OtaError):
    """No meter at the port: it does not exist, is busy, or cannot be opened."""


class DeviceTimeout(OtaError):
    """The meter did not answer in time."""


class NoSmpReply(DeviceTimeout):
    """The port answers, but not with SMP (a REPL, a stopped app, another device)."""


class ModemError(OtaError):
    """The USB modem of a `modem://` link cannot carry the link: it does not answer, has no SIM, is not registered
    or is denied by the network, has no data context, cannot open its socket or send (the message names which)."""


class DeviceRefused(OtaError):
    """The meter answered a request with an SMP error code (MGMT_ERR_*, or a group's own code)."""

    def __init__(self, what: str, rc: int, group: int | None = None, why: str = ""):
        self.rc = rc
        self.group = group
        self.why = why
        super().__init__(f"{what}: the meter refused ({describe_rc(rc, group)}{', ' + why if why else ''})")

    @property
    def busy(self) -> bool:
        return self.group is None and self.rc == EBUSY


class NotAuthorised(OtaError):
    """A locked meter refused the request's signer or envelope, or no envelope for it was given. `reason`: the
    meter's refusal code (no-envelope, unknown-key, wrong-role, expired, wrong-meter, replayed, ...)."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason


class Refused(OtaError):
    """The meter refused a command or a top-up token on its merits (`reason` names why: token-replayed, a bad
    settings field, not allowed in this control mode, a calibration reference it cannot use, ...)."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason


class CheckDeferred(OtaError):
    """The meter had no room on its heap to check a complete upload, twice: the image was not judged. The meter keeps
    the upload and checks it again when it next starts (or when the same upload is sent again)."""


class ImageError(ValueError):
    """A malformed or unacceptable image; `reason` is a stable code (see docs/image-format.md). Raised by
    ota_tool/image.py; defined here so that the exit table need not import the image parser."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class ImageRejected(OtaError):
    """The meter, or the same policy run locally, rejected an image; `reason` is the policy's code
    (docs/image-format.md)."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason


class RolledBack(OtaError):
    """A test boot failed and the meter went back to the image it ran before."""

    def __init__(self, tried: str, running: str, reason: str, console: list[str] | None = None):
        self.tried = tried
        self.running = running
        self.reason = reason
        self.console = console or []
        super().__init__(f"test boot of {tried} failed, the meter rolled back to {running}"
                         + (f": {reason}" if reason else ""))


# MCUmgr result codes (MGMT_ERR_*) the host acts on, and all of them in plain words
ENOMEM = 2
EBUSY = 10
EACCESSDENIED = 11
RC_WORDS = {
    1: "unknown error", 2: "out of memory", 3: "invalid request", 4: "timeout", 5: "not found",
    6: "bad state", 7: "message too large", 8: "not supported", 9: "corrupt", 10: "busy", 11: "not authorised",
}


def describe_rc(rc: int, group: int | None = None) -> str:
    words = RC_WORDS.get(rc, "error")
    return f"{words}, rc {rc}" + (f" in group {group}" if group is not None else "")
