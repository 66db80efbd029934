"""SMP over UDP with retransmission (ota_tool/smp_udp.py, upload.py) against the firmware's own SMP dispatch on a
real UDP socket behind a seeded fault injector (host_tests/unit/udp_meter.py).

The e2e pushes through the emulated module and radio link are in host_tests/emulator/test_push_over_nbiot_e2e.py;
these tests reach the faults a link model draws only rarely (a lost reset, any split of a reply, stale sequence
numbers) on every run. They assert correctness only (every answer is its own request's, the image arrives whole and
verified), never how long anything took."""

from __future__ import annotations

import asyncio
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smpclient.requests.os_management import EchoWrite, OSApplicationInfoRead
from udp_meter import BOARD, Faults, UdpMeter, flash

import cbor
from loader import staging
from meterkit import layout
from ota_tool import image, keys, meter_info, push
from ota_tool.cli import exits
from ota_tool.errors import CheckDeferred, DeviceTimeout
from ota_tool.link import MeterLink
from ota_tool.smp_udp import RTO_GRANULARITY, Rto, SmpUdpTransport, UdpSocket

DEV_IMAGE_KEY = layout.ROOT / "keys" / "dev" / "image-DEVELOPMENT-ONLY-ed25519.pem"


@pytest.fixture
def meter_dir(tmp_path, monkeypatch):
    flash(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def signed_image(size: int, seed: int = 1) -> bytes:
    payload = bytes((i * 131 + seed * 17 + (i >> 7)) & 0xFF for i in range(size))
    v = image.Version.parse("1.2.3")
    return image.sign(
        image.unsigned_prefix(payload, v, 5, BOARD["id"], layout.loader_api()), keys.load_private(DEV_IMAGE_KEY)
    )


def fast(link: MeterLink) -> MeterLink:
    """Loopback answers in microseconds: a short timer floor, so a lost datagram costs little test time."""
    link.rto = Rto(initial=0.2, floor=0.05, cap=1.0)
    return link


def test_rto_follows_rfc6298():
    r = Rto(initial=3.0, floor=0.5, cap=60.0)
    assert r.rto == 3.0 and r.srtt is None
    r.sample(1.0)  # first: srtt = R, rttvar = R/2, rto = srtt + 4 rttvar
    assert (r.srtt, r.rttvar, r.rto) == (1.0, 0.5, 3.0)
    r.sample(2.0)  # rttvar = 3/4 * 0.5 + 1/4 * |1 - 2|, srtt = 7/8 * 1 + 1/8 * 2
    assert r.rttvar == pytest.approx(0.625) and r.srtt == pytest.approx(1.125) and r.rto == pytest.approx(3.625)
    for _ in range(200):
        r.sample(0.01)
    assert r.rto == 0.5  # the floor
    r.backoff()
    assert r.rto == 1.0
    for _ in range(10):
        r.backoff()
    assert r.rto == 60.0  # the cap
    r2 = Rto(initial=1.0, floor=0.001, cap=10.0)
    r2.sample(0.5)
    for _ in range(500):
        r2.sample(0.5)  # steady: rttvar -> 0, rto -> srtt + G
    assert r2.rto == pytest.approx(0.5 + RTO_GRANULARITY, abs=1e-6)


def test_rto_refuses_a_floor_above_its_cap():
    from ota_tool.errors import BadInput

    with pytest.raises(BadInput):
        Rto(initial=1.0, floor=2.0, cap=1.0)


async def _echoes(url: str, n: int, timeout: float = 5.0) -> tuple[list[tuple[str, str]], MeterLink]:
    out = []
    link = fast(MeterLink(url, timeout=timeout))
    async with link:
        for i in range(n):
            text = f"echo-{i}-" + "x" * (i % 7)
            rsp = await link.request(EchoWrite(d=text), "echo", retries=3)
            out.append((text, rsp.r))
    return out, link


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_answer_is_its_own_requests_through_loss_duplication_and_reordering(meter_dir, seed):
    async def go():
        meter = UdpMeter(Faults(seed=seed, loss=0.15, dup=0.2, delay=0.03))
        url = await meter.start()
        try:
            return await _echoes(url, 40)
        finally:
            meter.close()

    pairs, _link = asyncio.run(go())
    assert all(sent == back for sent, back in pairs), pairs


def test_a_stale_reply_is_dropped_never_taken(meter_dir):
    """The meter sends its previous reply before each new one: each is the answer to an earlier request (its
    sequence number), which the client must drop."""

    async def go():
        meter = UdpMeter(Faults(replay=True))
        url = await meter.start()
        try:
            return await _echoes(url, 12)
        finally:
            meter.close()

    pairs, link = asyncio.run(go())
    assert all(sent == back for sent, back in pairs)
    assert link._transport.stale >= 12  # the parameters read's reply, then each echo's (one per request)


def test_only_a_request_safe_to_repeat_is_sent_again(meter_dir):
    async def go():
        meter = UdpMeter(Faults(drop_requests={2}))  # 1: smpclient's parameters read; 2: the first request
        url = await meter.start()
        link = fast(MeterLink(url, timeout=0.5))
        try:
            async with link:
                with pytest.raises(DeviceTimeout):
                    await link.request(EchoWrite(d="once"), "echo", retries=0)
                assert link._transport.retransmissions == 0
                meter.faults.drop_requests = {meter.arrived + 1}
                assert (await link.request(EchoWrite(d="again"), "echo", retries=3)).r == "again"
                assert link._transport.retransmissions >= 1
                return meter.requests
        finally:
            meter.close()

    served = asyncio.run(go())
    assert not any(b"once" in f for f in served)  # lost once, never sent again
    assert sum(b"again" in f for f in served) >= 1  # lost once, sent again, served


def test_a_read_is_sent_again_whoever_asks(meter_dir):
    """An SMP read changes nothing on the meter, so the UDP link sends it again even when its caller declared no
    retries (`ota info` did, and one lost datagram on an NB-IoT link cost the whole --timeout)."""

    async def go():
        meter = UdpMeter(Faults(drop_requests={2}))  # 1: smpclient's parameters read; 2: the info read
        url = await meter.start()
        link = fast(MeterLink(url, timeout=2.0))
        try:
            async with link:
                rsp = await link.request(OSApplicationInfoRead(format="i"), "info board")
                return rsp.output, link._transport.retransmissions
        finally:
            meter.close()

    output, again = asyncio.run(go())
    assert output == BOARD["id"] and again >= 1


def test_ota_echo_is_sent_again_when_lost(meter_dir):
    """An echo changes nothing on the meter: `ota echo` (meter_info.echo) sends it again over UDP, as a read."""

    async def go():
        meter = UdpMeter(Faults(drop_requests={2}))  # 1: smpclient's parameters read; 2: the echo
        url = await meter.start()
        link = fast(MeterLink(url, timeout=2.0))
        try:
            async with link:
                return await meter_info.echo(link, "lost once"), link._transport.retransmissions
        finally:
            meter.close()

    text, again = asyncio.run(go())
    assert text == "lost once" and again >= 1


def test_icmp_refusals_are_taken_off_the_udp_socket_s_queue():
    """smpclient's UDP protocol queues every ICMP error and nobody reads them: the endpoint takes them off at each
    send and receive, so a meter that is not listening does not grow the host's memory."""

    async def go():
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        sink.close()  # nobody listens there: every datagram comes back as a port unreachable
        ep = UdpSocket("127.0.0.1", port)
        await ep.open(5)
        try:
            for _ in range(50):
                await ep.send(b"x" * 8)
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)
            assert ep.drop_waiting() == 0
            return ep.refusals, ep._client._protocol.error_queue.qsize(), ep.last_error
        finally:
            await ep.close()

    refusals, queued, last = asyncio.run(go())
    assert refusals >= 1 and queued == 0 and isinstance(last, ConnectionRefusedError)


async def _push(
    meter: UdpMeter, data: bytes, window: int | None = None, datagram_max: int = 512, stop_at: int | None = None
) -> push.PushResult | None:
    url = await meter.start()
    try:
        link = fast(MeterLink(url, timeout=10.0, datagram_max=datagram_max))
        async with link:

            def progress(done: int, total: int) -> None:
                if stop_at is not None and done >= stop_at:
                    raise KeyboardInterrupt  # the user's Ctrl-C, mid-upload

            try:
                return await push.push(link, data, progress, window=window)
            except KeyboardInterrupt:
                return None
    finally:
        meter.close()


@pytest.mark.parametrize(("seed", "window"), [(11, 1), (12, 3), (13, 4)])
def test_an_image_arrives_whole_and_verified_through_a_faulty_link(meter_dir, seed, window):
    data = signed_image(12_000, seed)
    meter = UdpMeter(Faults(seed=seed, loss=0.08, dup=0.1, delay=0.02))
    r = asyncio.run(_push(meter, data, window=window))
    assert r is not None and r.state == "accepted" and r.window == window
    assert meter.staged() == data
    assert r.image_hash == image.parse(data).first(image.Tlv.SHA256, "unprotected")


def _check_without_room(monkeypatch, times: int) -> list[int]:
    """The meter's check (loader/staging.py check_staged, the firmware's own) finds no room on its heap the first
    `times` times it runs: the MemoryError a board's fragmented heap raises, which CPython never does by itself."""
    calls = [0]
    real = staging.check_staged

    def check(board):
        calls[0] += 1
        if calls[0] <= times:
            raise MemoryError
        return real(board)

    monkeypatch.setattr(staging, "check_staged", check)
    return calls


def test_an_out_of_memory_verdict_is_checked_again_and_the_image_accepted(meter_dir, monkeypatch):
    # the meter's own retry (after make_room) fails too: its verdict is rejected/out-of-memory, the upload kept
    calls = _check_without_room(monkeypatch, 2)
    data = signed_image(6_000)
    meter = UdpMeter()
    r = asyncio.run(_push(meter, data))
    assert r is not None and r.state == "accepted" and calls[0] == 3
    assert meter.staged() == data


def test_a_meter_that_never_finds_room_for_the_check_gets_a_clear_error_and_keeps_the_upload(meter_dir, monkeypatch):
    calls = _check_without_room(monkeypatch, 100)
    data = signed_image(6_000)
    meter = UdpMeter()
    with pytest.raises(CheckDeferred) as e:
        asyncio.run(_push(meter, data))
    assert "no memory free to check the image" in str(e.value) and "ota reset" in str(e.value)
    assert exits.exit_for(e.value) == exits.Exit.REFUSED and calls[0] == 4  # two checks, each with its own retry
    assert meter.staged() == data and meter.images.reason == "out-of-memory"


def test_the_window_follows_the_meters_buffer_count(meter_dir):
    data = signed_image(6_000)
    meter = UdpMeter(buf_count=3)
    r = asyncio.run(_push(meter, data))
    assert r is not None and r.window == 3 and meter.staged() == data


def test_chunks_fit_the_datagram_cap(meter_dir):
    data = signed_image(5_000)
    meter = UdpMeter(Faults(seed=5, dup=0.2, delay=0.01), buf_count=2)
    r = asyncio.run(_push(meter, data, datagram_max=200))
    assert r is not None and r.state == "accepted" and meter.staged() == data
    assert max(len(f) for f in meter.requests) <= 200


def test_a_stopped_upload_resumes_from_the_meters_offset(meter_dir):
    data = signed_image(16_000)
    first = UdpMeter(Faults(seed=7, loss=0.05, delay=0.01))
    assert asyncio.run(_push(first, data, window=3, stop_at=6_000)) is None
    held = len(first.staged())
    assert 6_000 <= held < len(data)
    again = UdpMeter(Faults(seed=8, loss=0.05, delay=0.01))  # the meter's files stay: a new link, the same meter
    r = asyncio.run(_push(again, data, window=3))
    assert r is not None and r.state == "accepted" and again.staged() == data
    offsets = [cbor.loads(f[8:])["off"] for f in again.requests if f[4:6] == b"\x00\x01" and f[7] == 1]
    assert offsets[0] == 0 and all(o >= held for o in offsets if o), offsets  # on from the meter's offset


def test_ota_commands_over_a_udp_link(meter_dir, tmp_path):
    """The CLI as a user runs it (in process): `ota info` and `ota push` of a real app image built for the board,
    through a lossy, duplicating, reordering link, three chunks in flight as the meter reports."""
    import json

    from click.testing import CliRunner
    from udp_meter import MeterThread

    from ota_tool.cli import main

    img = tmp_path / "app.img"
    r = CliRunner().invoke(
        main,
        [
            "build",
            str(layout.FIRMWARE_DIR),
            "--board",
            BOARD["id"],
            "--version",
            "1.4.0",
            "--key",
            str(DEV_IMAGE_KEY),
            "-o",
            str(img),
        ],
    )
    assert r.exit_code == 0, r.output
    data = img.read_bytes()
    meter = MeterThread(Faults(seed=21, loss=0.05, dup=0.05, delay=0.01), buf_count=3)
    with meter as url:
        info = CliRunner().invoke(main, ["info", "--port", url, "--timeout", "10", "--json"])
        pushed = CliRunner().invoke(main, ["push", str(img), "--port", url, "--timeout", "10", "--json"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout)["board"] == BOARD["id"] and json.loads(info.stdout)["buf_count"] == 3
    assert pushed.exit_code == 0, pushed.output
    report = json.loads(pushed.stdout)
    assert report["state"] == "accepted" and report["version"] == "1.4.0+0" and report["window"] == 3
    # the upload's own counts, for the benchmark (host_tests/bench/udp_push.py): what went on the wire, sent again
    assert report["sent_bytes"] >= len(data) and report["retries"] >= 0, report
    assert all(isinstance(report[k], int) for k in ("timeouts", "go_backs", "stale")), report
    assert meter.meter.staged() == data


def test_a_meter_that_never_takes_a_chunk_ends_the_upload_with_a_timeout(meter_dir):
    """A meter that answers every chunk with an offset it never moves from: exit 4's error, not an endless loop."""
    from loader import smp

    meter = UdpMeter(buf_count=2)
    meter.ctx.server.register(smp.GROUP_IMAGE, 1, lambda req: {"off": 0}, read=False)
    with pytest.raises(DeviceTimeout) as e:
        asyncio.run(_push(meter, signed_image(3_000)))
    assert "without taking one" in str(e.value)


def test_from_binds_the_host_s_own_port_so_a_fixed_peer_meter_can_answer():
    """`udp://HOST:PORT?from=LPORT`: requests leave from LPORT (a BC660K meter answers only the head-end address
    it was opened with), and the replies sent to LPORT are taken."""
    import socket
    import threading

    meter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    meter.bind(("127.0.0.1", 0))
    meter.settimeout(10)
    free = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    free.bind(("127.0.0.1", 0))
    lport = free.getsockname()[1]
    free.close()
    seen = []

    def serve() -> None:  # the connect's parameters read, then the echo: each answered to where it came from
        for _ in range(2):
            data, src = meter.recvfrom(2048)
            seen.append(src[1])
            req = cbor.loads(data[8:]) if len(data) > 8 else {}
            rsp = {"r": req["d"]} if data[7] == 0 else {"buf_size": 2048, "buf_count": 1}
            body = cbor.dumps(rsp)
            meter.sendto(bytes([data[0] + 1, 0, 0, len(body)]) + data[4:8] + body, src)

    async def go() -> str:
        async with MeterLink(f"udp://127.0.0.1:{meter.getsockname()[1]}?from={lport}", timeout=5) as link:
            return (await link.request(EchoWrite(d="fixed"), "echo")).r

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        assert asyncio.run(go()) == "fixed"
    finally:
        t.join(10)
        meter.close()
    assert seen == [lport, lport]


def test_a_link_from_the_same_port_opens_at_once_after_the_last_one_closed():
    """`ota push --test` over `udp://…?from=LPORT` closes its probe link and opens the next one from LPORT at once
    (after the meter's reset): asyncio closes a datagram socket only on a later turn of its loop, so `close` waits
    for that. Before, the second bind failed with EADDRINUSE and the push reported that the meter did not come back
    from its reset (host_tests/emulator/test_push_over_nbiot_e2e.py found it)."""
    free = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    free.bind(("127.0.0.1", 0))
    lport = free.getsockname()[1]
    free.close()

    async def go() -> int:
        opened = 0
        for _ in range(3):
            ep = UdpSocket("127.0.0.1", 9, lport)
            await ep.open(5)
            opened += 1
            await ep.close()
        return opened

    assert asyncio.run(go()) == 3


class _Datagrams:
    """The transport's datagram endpoint, replaced by a list of what arrives (the reassembly alone)."""

    def __init__(self, datagrams: list[bytes]):
        self.datagrams = list(datagrams)

    async def receive(self) -> bytes:
        return self.datagrams.pop(0)


def _reassembled(datagrams: list[bytes]) -> tuple[bytes, int]:
    t = SmpUdpTransport(endpoint=_Datagrams(datagrams))  # type: ignore[arg-type]
    return asyncio.run(t.receive()), t.runts


def _reply(n: int, seq: int = 3) -> bytes:
    body = cbor.dumps({"x": "y" * n})
    return bytes([3, 0, len(body) >> 8, len(body) & 0xFF, 0, 66, seq, 0]) + body


@given(n=st.integers(0, 2000), cap=st.integers(64, 600))
def test_a_reply_split_over_datagrams_of_any_size_is_put_back_together(n, cap):
    frame = _reply(n)
    parts = [frame[i : i + cap] for i in range(0, len(frame), cap)]
    assert _reassembled(parts) == (frame, 0)


def test_a_frame_left_unfinished_by_a_lost_datagram_is_dropped_and_the_next_whole_one_taken():
    big, small = _reply(1200), _reply(10, seq=4)
    parts = [big[:512], big[512:1024], big[1024:]]
    assert _reassembled([parts[0], parts[2], small]) == (small, 1)  # the middle lost: never complete, dropped
    assert _reassembled([parts[0], small]) == (small, 1)
    # a datagram that starts nothing (the meter's uplink map: reserved bits set) neither starts nor ends a frame
    uplink = cbor.dumps({"meter": "m", "seq": 1, "up_s": 5, "link": "up"})
    assert uplink[0] == 0xA4 and _reassembled([uplink, *parts]) == (big, 1)
    assert _reassembled([parts[1], parts[0], parts[1], parts[2]]) == (big, 1)  # reordered: the stray one dropped


def test_a_reset_lost_on_its_way_is_sent_again_while_the_meter_shows_its_old_boot(meter_dir):
    """A reset is not safe to repeat blindly (its answer may be what was lost, and the meter gone already); sent
    again only when the meter still answers with the boot number from before it."""

    async def go(drop: set[int]) -> tuple[list, list]:
        meter = UdpMeter(Faults(drop_requests=drop))
        url = await meter.start()
        link = fast(MeterLink(url, timeout=0.5))
        try:
            async with link:
                booted = await push.boot_number(link)
                first = meter.arrived + 1
                meter.faults.drop_requests = {first + k for k in drop}
                await push.reset_until_gone(link, None, booted)
                return meter.ctx.resets, meter.requests
        finally:
            meter.close()

    resets, served = asyncio.run(go({0}))  # the first reset lost: the boot number read, the reset sent again
    assert resets == [False]
    resets, served = asyncio.run(go(set()))  # answered at once: sent once
    assert resets == [False]
    resets, served = asyncio.run(go({0, 2, 4}))  # lost every time: RESET_TRIES tries, then the caller's watch
    assert resets == []
