"""STATE/console.log (`meter-emu console`): the text between SMP frames is kept byte for byte, however the console's
bytes are chunked; the frames are left out; the log is bounded (rotated into console.log.1); the reader gives its
tail and then what is appended, across a rotation."""

from __future__ import annotations

import random

import pytest
from smp import packet

from emulator.consolelog import ConsoleLog, FrameFilter, Reader


def frame(n: int) -> bytes:
    """A serial SMP packet as the firmware writes it (first line 0x06 0x09, continuations 0x04 0x14)."""
    return b"".join(packet.encode(bytes(random.Random(n).randrange(256) for _ in range(n))))


TEXT = [b"loader: app 0.1.0 from slot a, development mode\r\n", b"partial line, then a frame: ",
        b"Traceback (most recent call last):\r\n  File \"app/main.py\", line 1\r\nRuntimeError: broken build\r\n",
        b"raw REPL; CTRL-B to exit\r\n>OK\x04\x04>", b"\x04 alone and \x06 alone are text\r\n", b"caf\xc3\xa9 \r\n"]


@pytest.mark.parametrize("seed", range(20))
def test_frames_are_taken_out_and_text_kept_whatever_the_chunks(seed):
    rnd = random.Random(seed)
    stream, want = b"", b""
    for _ in range(12):
        t = rnd.choice(TEXT)
        stream += t
        want += t
        if rnd.random() < 0.7:
            stream += frame(rnd.choice([0, 5, 90, 300, 2100]))
    f = FrameFilter()
    got = b""
    i = 0
    while i < len(stream):
        n = rnd.choice([1, 2, 3, 7, 64, 500])
        got += f.feed(stream[i:i + n])
        i += n
    assert got == want
    assert b"\x06\x09" not in got and b"\x04\x14" not in got


def test_a_reset_mid_frame_does_not_swallow_the_next_boots_text(tmp_path):
    log = ConsoleLog(tmp_path / "console.log")
    log.write(b"before\r\n" + frame(200)[:40])  # the board reset while it sent a frame
    log.note("rpi_pico boot 2, reset cause wdt")
    log.write(b"loader: app 0.1.0 from slot a, development mode\r\n")
    log.close()
    text = Reader(tmp_path / "console.log").tail(10)
    assert text == ("before\n--- meter-emu: rpi_pico boot 2, reset cause wdt ---\n"
                    "loader: app 0.1.0 from slot a, development mode\n")


def test_a_boot_line_starts_on_a_line_of_its_own(tmp_path):
    log = ConsoleLog(tmp_path / "console.log")
    log.write(b">>> ")
    log.note("esp32_devkitc boot 3, reset cause hard")
    log.close()
    assert (tmp_path / "console.log").read_bytes() == b">>> \n--- meter-emu: esp32_devkitc boot 3, reset cause hard ---\n"


def test_the_log_is_bounded_and_the_tail_reaches_into_the_previous_file(tmp_path):
    log = ConsoleLog(tmp_path / "console.log", max_bytes=1000)
    for k in range(500):
        log.write(b"line %04d\r\n" % k + frame(50))
    log.close()
    sizes = [p.stat().st_size for p in tmp_path.iterdir()]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["console.log", "console.log.1"]
    assert max(sizes) <= 1000 + 11 and sum(sizes) <= 2 * 1011
    tail = Reader(tmp_path / "console.log").tail(120).splitlines()
    assert tail == [f"line {k:04d}" for k in range(380, 500)]
    assert Reader(tmp_path / "console.log").tail(0) == ""


def test_the_reader_follows_across_a_rotation(tmp_path):
    log = ConsoleLog(tmp_path / "console.log", max_bytes=100)
    log.write(b"first\r\n")
    r = Reader(tmp_path / "console.log")
    assert r.tail(5) == "first\n"
    assert r.more() == ""
    log.write(b"x" * 95 + b"\r\n")  # past 100 bytes: rotated after this write
    log.write(b"after the rotation\r\n")
    assert r.more() == "x" * 95 + "\nafter the rotation\n"
    log.write("caf\u00e9".encode()[:4])  # a character split between two writes
    assert r.more() == "caf"
    log.write("caf\u00e9".encode()[4:] + b"\r\n")
    assert r.more() == "\u00e9\n"
    log.close()
    r.close()


def test_no_log_yet_is_an_empty_view(tmp_path):
    r = Reader(tmp_path / "console.log")
    assert r.tail(40) == "" and r.more() == ""
