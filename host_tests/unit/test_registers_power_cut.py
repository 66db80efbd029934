"""Register persistence under power cuts at every flash operation, on a real littlefs (littlefs-python, MicroPython's
VfsLfs2 geometry): after any cut the registers read back are those of the last completed save or of the save that
was in progress — never less, never a mix, never corrupt."""

from __future__ import annotations

import json

import pytest

from host_tests.registers_flash import Flash, PowerCut, energy_step, registers
from meterkit.boards import load_board

SAVES = 150  # enough saves to pass several compactions of the folder's metadata pair


def _run_until(flash: Flash, cut_at: int | None, torn: int = 0):
    """Save SAVES times (1 Wh more each), cut before flash operation `cut_at`; return (completed saves, in progress)."""
    regs = registers.Registers()
    persist = registers.Persist()
    done = 0
    flash.arm(cut_at, torn)
    with flash.bound():
        try:
            for k in range(SAVES):
                energy_step(regs, 1)
                persist.save(regs)
                done = k + 1
        except PowerCut:
            return done, True
    return done, False


def _read_back(flash: Flash) -> tuple[str, int]:
    flash.power_up()
    regs = registers.Registers()
    with flash.bound():
        status = registers.Persist().load(regs)
    return status, regs.wh[registers.IMPORT]


def _ops_for_all_saves(board: dict) -> int:
    flash = Flash(board)
    start = flash.flash.ops
    _run_until(flash, None)
    return flash.flash.ops - start


@pytest.mark.parametrize("board_id", ["rpi_pico", "esp32_devkitc"])
@pytest.mark.parametrize("torn", [0, 16])
def test_every_cut_point_keeps_the_last_or_the_new_registers(board_id: str, torn: int) -> None:
    board = load_board(board_id)
    total = _ops_for_all_saves(board)
    assert total > SAVES  # each save programs flash
    stride = 1 if board_id == "rpi_pico" and torn == 0 else 3  # every point on one board, sampled on the other
    for cut in range(1, total + 1, stride):
        flash = Flash(board)
        done, cut_hit = _run_until(flash, cut, torn)
        assert cut_hit
        status, wh = _read_back(flash)
        assert status in ("new", "ok", "one-bad"), (cut, status)
        assert wh in (done, done + 1), f"cut before op {cut}: {wh} Wh read back after {done} completed saves"


def test_records_stay_small_and_readable_by_the_host() -> None:
    import cbor2

    regs = registers.Registers()
    energy_step(regs, 123456)
    data = registers.encode(regs.record(5))
    assert len(data) < 200
    rec = cbor2.loads(data[:-4])
    assert rec["seq"] == 5 and rec["wh"][registers.IMPORT] == 123456
    assert json.dumps(rec)  # plain data only
