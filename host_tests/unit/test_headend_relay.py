"""The benchmark's head-end relay (host_tests/bench/udp_push.py): a client's datagram reaches the meter from the
head-end's address, the meter's answer reaches the client, a stranger's datagram to the head-end port is not
forwarded, and an image upload answer's offset is noted. Loopback sockets, no emulator."""

from __future__ import annotations

import socket

import cbor2

from host_tests.bench.udp_push import HeadEndRelay


def _sock() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    return s


def test_the_relay_forwards_both_ways_and_only_the_meters_answers():
    meter, client, stranger = _sock(), _sock(), _sock()
    with meter, client, stranger, HeadEndRelay(("127.0.0.1", 0), ("127.0.0.1", 0), meter.getsockname()) as relay:
        front, headend = relay.front.getsockname(), relay.back.getsockname()
        client.sendto(b"request", front)
        data, src = meter.recvfrom(2048)
        assert (data, src) == (b"request", headend)  # the meter sees its head-end, not the client
        upload_answer = bytes([3, 0, 0, 0, 0, 1, 0, 1]) + cbor2.dumps({"rc": 0, "off": 1024})
        stranger.sendto(b"spoofed", headend)  # not from the meter: dropped
        meter.sendto(upload_answer, headend)
        assert client.recvfrom(2048) == (upload_answer, front)
        assert relay.down == [1, 7] and relay.up == [1, len(upload_answer)] and relay.top_off == 1024
