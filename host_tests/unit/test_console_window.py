"""The console's request buffers as the meter reports them (os group MCUmgr parameters, buf_count), for every board
file: two where the console is USB CDC (flow controlled: a second request waits whole while the first is served),
one on a UART console (a board's stdin ring is smaller than a request and drops what it cannot take). `ota push`
keeps that many upload chunks in flight (ota_tool/upload.py)."""

from __future__ import annotations

import json

import pytest

import cbor
from loader import smp
from loader.os_group import CONSOLE_USB, OsGroup
from meterkit import layout

BOARDS = sorted((layout.ROOT / "boards").glob("*.json"))


class Ctx:
    def __init__(self, board: dict):
        self.board = board


def params(board: dict) -> dict:
    s = smp.Server()
    OsGroup(Ctx(board)).register(s)
    rsp = s.handle(smp.header(1, smp.OP_READ, 1, smp.GROUP_OS, 3, 6) + cbor.dumps({}))
    return cbor.loads(rsp[smp.HEADER_SIZE :])


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_buf_count_follows_the_boards_console(path):
    board = json.loads(path.read_text())
    usb = board["uarts"]["console"]["id"] == CONSOLE_USB
    assert params(board) == {"buf_size": smp.BUF_SIZE, "buf_count": 2 if usb else 1}


def test_the_boards_cover_both_kinds_of_console():
    kinds = {json.loads(p.read_text())["uarts"]["console"]["id"] == CONSOLE_USB for p in BOARDS}
    assert kinds == {True, False}


def test_a_board_without_a_console_entry_gets_one_buffer():
    assert params({"id": "x", "mcu": {"arch": "armv6m"}})["buf_count"] == 1
