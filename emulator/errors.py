"""Errors of the emulator library, each with the CLI exit code it maps to."""


class EmulatorError(Exception):
    exit_code = 1


class BadInput(EmulatorError):
    """An input the emulator cannot use (a firmware tree that does not build, ...): a usage error."""

    exit_code = 2


class BoardNotFound(EmulatorError):
    exit_code = 3


class StateCorrupt(EmulatorError):
    exit_code = 4


class StateBusy(EmulatorError):
    exit_code = 5


class VmMissing(EmulatorError):
    exit_code = 6


class NotRunning(EmulatorError):
    exit_code = 7


class ControlError(EmulatorError):
    """The running emulator refused a control request (unknown key, bad value, ...)."""

    exit_code = 8
