"""Errors of the ota library, each with the exit code the CLI maps it to (documented in `ota --help`)."""


class OtaError(Exception):
    exit_code = 1


class NoDevice(OtaError):
    exit_code = 3


class DeviceTimeout(OtaError):
    exit_code = 4


class DeviceRefused(OtaError):
    """The meter answered with an SMP error code."""

    exit_code = 5

    def __init__(self, what: str, rc: int, group: int | None = None):
        self.rc = rc
        self.group = group
        super().__init__(f"{what}: the meter refused ({describe_rc(rc, group)})")


# MCUmgr result codes (MGMT_ERR_*) in plain words
RC_WORDS = {
    1: "unknown error", 2: "out of memory", 3: "invalid request", 4: "timeout", 5: "not found",
    6: "bad state", 7: "message too large", 8: "not supported", 9: "corrupt", 10: "busy", 11: "not authorised",
}


def describe_rc(rc: int, group: int | None = None) -> str:
    words = RC_WORDS.get(rc, "error")
    return f"{words}, rc {rc}" + (f" in group {group}" if group is not None else "")
