"""The app's register persistence (firmware/app/registers.py) on CPython over a real littlefs with power cuts before
any flash operation (host_tests/lfs_meter.py's NOR flash), for the power-cut tests and the wear benchmark."""

from __future__ import annotations

from contextlib import contextmanager

from host_tests.lfs_meter import CutFlash, PowerCut, Volume  # first: it puts the firmware on sys.path

from app import registers  # noqa: E402  isort: skip


class WearFlash(CutFlash):
    """CutFlash that also counts erases per block."""

    def __init__(self, size: int, block_size: int):
        super().__init__(size)
        self.bs = block_size
        self.erases: dict[int, int] = {}

    def erase(self, cfg, block: int) -> int:
        rc = super().erase(cfg, block)
        if rc == 0:
            self.erases[block] = self.erases.get(block, 0) + 1
        return rc


class Flash:
    """A board's littlefs with the meter/ folder, remounted after each cut as a board does at power-up."""

    def __init__(self, board: dict):
        geo = board["flash"]
        self.bs, self.bc = geo["block_size"], geo["block_count"]
        self.flash = WearFlash(self.bs * self.bc, self.bs)
        self.vol = Volume(self.flash, self.bs, self.bc, fresh=True)
        self.vol.mkdir("meter")

    def arm(self, cut_at: int | None, torn: int = 0) -> None:
        self.flash.cut_at = None if cut_at is None else self.flash.ops + cut_at
        self.flash.torn = torn

    def power_up(self) -> None:
        self.flash.dead = False
        self.flash.cut_at = None
        self.vol = Volume(self.flash, self.bs, self.bc)

    @contextmanager
    def bound(self):
        """registers' `open` is this volume's while inside."""
        registers.open = self.vol.open  # type: ignore[attr-defined]
        try:
            yield
        finally:
            registers.__dict__.pop("open", None)


def energy_step(regs: registers.Registers, wh: int) -> None:
    regs.add(registers.IMPORT, wh * registers.MJ_PER_WH + 123)
    regs.add(registers.APPARENT, wh * registers.MJ_PER_WH)


__all__ = ["Flash", "PowerCut", "energy_step", "registers"]
