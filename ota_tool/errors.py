"""Errors of the ota library, each with the exit code the CLI maps it to (documented in `ota --help`)."""


class OtaError(Exception):
    exit_code = 1


class NoDevice(OtaError):
    exit_code = 3


class DeviceTimeout(OtaError):
    exit_code = 4


NOT_AUTHORISED_EXIT = 9
EACCESSDENIED = 11


class DeviceRefused(OtaError):
    """The meter answered with an SMP error code (exit 9 when it was "not authorised", else 5)."""

    exit_code = 5

    def __init__(self, what: str, rc: int, group: int | None = None, why: str = ""):
        self.rc = rc
        self.group = group
        if rc == EACCESSDENIED and group is None:
            self.exit_code = NOT_AUTHORISED_EXIT
        super().__init__(f"{what}: the meter refused ({describe_rc(rc, group)}{', ' + why if why else ''})")


# Exit codes for an image rejected by the meter (or by the local check), by the policy's reason code
# (docs/image-format.md lists them); any other reason exits 8.
REJECTED_EXIT = 8
REASON_EXIT = {
    "unknown-key": 10, "bad-signature": 10, "development-key-refused": 10,
    "wrong-board": 11, "loader-api": 11,
    "counter-too-low": 12, "counter-step": 12,
    "oversize": 13,
}


def rejection_exit(reason: str) -> int:
    return REASON_EXIT.get(reason, REJECTED_EXIT)


# MCUmgr result codes (MGMT_ERR_*) in plain words
RC_WORDS = {
    1: "unknown error", 2: "out of memory", 3: "invalid request", 4: "timeout", 5: "not found",
    6: "bad state", 7: "message too large", 8: "not supported", 9: "corrupt", 10: "busy", 11: "not authorised",
}


def describe_rc(rc: int, group: int | None = None) -> str:
    words = RC_WORDS.get(rc, "error")
    return f"{words}, rc {rc}" + (f" in group {group}" if group is not None else "")
