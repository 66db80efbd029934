"""SMP over UDP through the modem driver (app/modem_smp.py), on CPython and the VM, against the scripted BC660K: one
request per datagram answered exactly as the console's server answers it, a reply larger than a datagram sent in
several that its header's length ties together, replies that would amplify are not sent, work after a reply runs after it has gone, and nothing a datagram holds stops the server."""

import asyncio
import binascii

from scripted_module import Bc660k, Script, recv_urc, run, stream

import cbor
from app import modem, modem_bc660k, modem_smp
from loader import smp
from loader.os_group import OsGroup


class _Ctx:
    board = {"id": "rpi_pico", "name": "Raspberry Pi Pico", "mcu": {"arch": "armv6m"}}
    meter_id = "m-1"
    mode = "development"
    app_version = "0.1.0"

    def __init__(self):
        self.resets = []

    def request_reset(self, force=False):
        self.resets.append(force)


def _server():
    s = smp.Server()
    OsGroup(_Ctx()).register(s)
    return s


def _req(op, group, cmd, payload, seq=7):
    body = cbor.dumps(payload)
    return smp.header(1, op, len(body), group, seq, cmd) + body


ECHO = _req(smp.OP_WRITE, smp.GROUP_OS, 0, {"d": "hello"})
INFO = _req(smp.OP_READ, smp.GROUP_OS, 7, {"format": "a"})
PARAMS = _req(smp.OP_READ, smp.GROUP_OS, 6, {})


def serve(requests, module=None, fixed_peer=None, server=None):
    """Bring the scripted module up, serve SMP on it, deliver each request datagram (a tuple of them: all at once, as
    a burst from the network); the replies the module sent."""
    module = module or Bc660k()
    script = Script(module)
    m = modem.Modem(stream(script), modem_bc660k)
    m.sync_ms = 200
    server = server or _server()
    out = {}

    async def main():
        task = asyncio.create_task(m.run())
        await m.wait_up()
        sock = await m.open("10.0.0.1", 40000, modem_smp.PORT)
        udp = modem_smp.SmpOverUdp(server, sock, fixed_peer)
        serving = asyncio.create_task(udp.run())
        for req in requests:
            burst = req if isinstance(req, tuple) else (req,)
            done = udp.answered + udp.unsent + udp.refused_large + server.errors + sock.malformed
            done += sock.dropped + len(burst)
            script.push(b"".join(recv_urc(sock.id, r) for r in burst))
            for _ in range(300):
                await asyncio.sleep(0.01)
                if (udp.answered + udp.unsent + udp.refused_large + server.errors + sock.malformed
                        + sock.dropped >= done):
                    break
        serving.cancel()
        task.cancel()
        out["udp"] = udp

    run(main)
    return [binascii.unhexlify(h) for h in module.sent], out["udp"], script


def test_a_request_datagram_gets_the_console_s_reply_in_one_datagram():
    replies, udp, script = serve([ECHO, INFO])
    assert replies == [_server().handle(ECHO), _server().handle(INFO)]
    assert cbor.loads(replies[0][8:]) == {"r": "hello"} and udp.answered == 2
    assert b'AT+QIOPEN=0,0,"UDP","10.0.0.1",40000,1337,1' in script.commands


def test_what_is_not_an_smp_request_gets_no_reply_and_the_next_one_is_served():
    short = b"\x02\x00\x00"
    bad_length = ECHO[:3] + b"\x40" + ECHO[4:]  # the header's length disagrees with the datagram
    replies, udp, _ = serve([short, bad_length, ECHO])
    assert len(replies) == 2 and cbor.loads(replies[1][8:]) == {"r": "hello"}
    assert cbor.loads(replies[0][8:]) == {"rc": smp.EINVAL}


def test_a_reply_larger_than_a_datagram_goes_in_several_that_the_header_s_length_ties_together():
    server = _server()
    cap = modem_bc660k.MAX_DATAGRAM
    server.register(64, 0, lambda req: {"x": "y" * req["n"]})
    fits = _req(smp.OP_READ, 64, 0, {"n": cap - 8 - 6})  # 8 header bytes, {"x": <string of n>} in 6 more
    one_more = _req(smp.OP_READ, 64, 0, {"n": cap - 8 - 5})
    large = _req(smp.OP_READ, 64, 0, {"n": 1500})
    replies, udp, _ = serve([fits, one_more, large], server=server)
    assert [len(r) for r in replies] == [cap, cap, 1, cap, cap, 1500 + 8 + 6 - 2 * cap]
    assert udp.answered == 3 and udp.split == 3
    for first, parts in ((0, 1), (1, 2), (3, 3)):
        frame = b"".join(replies[first : first + parts])
        assert (frame[2] << 8 | frame[3]) == len(frame) - 8  # the first datagram's header counts them all
    assert cbor.loads(b"".join(replies[3:])[8:]) == {"x": "y" * 1500}
    assert cbor.loads(b"".join(replies[1:3])[8:]) == {"x": "y" * (cap - 8 - 5)}


def test_no_reply_amplifies_on_a_socket_that_answers_any_sender():
    # INFO's reply is many times its request: sent on a BC660K socket (it can only reach the head-end), not where a
    # spoofed source could receive it; an echo's reply is its request's size and goes either way
    replies, udp, _ = serve([INFO, ECHO], fixed_peer=False)
    assert len(replies) == 1 and cbor.loads(replies[0][8:]) == {"r": "hello"} and udp.refused_large == 1
    assert len(_server().handle(INFO)) > modem_smp.AMPLIFY * len(INFO)
    assert modem_bc660k.FIXED_PEER is True


def test_work_after_a_reply_runs_once_the_reply_has_gone_even_when_it_fails():
    server = _server()
    module = Bc660k()
    seen = []

    def later():
        seen.append(len(module.sent))
        raise ValueError("after-reply work failed")

    def reset(req):
        server.after_reply = later
        return {}

    server.register(64, 1, reset)
    replies, udp, _ = serve([_req(smp.OP_WRITE, 64, 1, {}), ECHO], module=module, server=server)
    assert seen == [1] and server.errors == 1 and udp.answered == 2 and len(replies) == 2


class _Refusing(Bc660k):
    """Answers the first AT+QISEND with SEND FAIL (the radio's buffer is full)."""

    refused = False

    def __call__(self, cmd):
        if cmd.startswith(b"AT+QISEND=") and not self.refused:
            self.refused = True
            return b"\r\nSEND FAIL\r\n"
        return super().__call__(cmd)


def test_a_reply_the_module_refuses_is_counted_and_the_server_goes_on():
    replies, udp, _ = serve([ECHO, ECHO], module=_Refusing())
    assert udp.unsent == 1 and udp.answered == 1 and len(replies) == 1


def test_a_locked_meter_refuses_over_udp_what_it_refuses_over_the_console():

    ctx = _Ctx()
    ctx.mode = "locked"
    from loader.wallclock import Uptime

    ctx.uptime = Uptime()  # in its boot window: an unsigned reset is refused (EBUSY)
    server = smp.Server()
    OsGroup(ctx).register(server)
    reset = _req(smp.OP_WRITE, smp.GROUP_OS, 5, {})
    replies, udp, _ = serve([reset], server=server)
    assert replies == [server.handle(reset)] and cbor.loads(replies[0][8:]) == {"rc": smp.EBUSY}
    assert ctx.resets == []


def test_os_params_over_udp_name_the_socket_s_buffers_not_the_console_s():
    # buf_size: the datagram cap (no larger request arrives, no larger reply goes); buf_count: the socket's receive
    # slots. The console's own figures are untouched, before and after a UDP request.
    server = _server()
    console = {"buf_size": smp.BUF_SIZE, "buf_count": 1}  # this board has a UART console
    assert cbor.loads(server.handle(PARAMS)[8:]) == console
    replies, udp, _ = serve([PARAMS, ECHO], server=server)
    assert cbor.loads(replies[0][8:]) == {"buf_size": modem_bc660k.MAX_DATAGRAM, "buf_count": modem.QUEUE}
    assert modem.QUEUE == 2 and udp.answered == 2
    assert cbor.loads(server.handle(PARAMS)[8:]) == console


def test_as_many_requests_as_buf_count_arriving_at_once_are_all_answered():
    # what the buf_count over UDP promises: QUEUE datagrams arriving back to back (while the first is answered) are
    # all served; one more finds the socket's slots taken and is dropped (the client's retry covers it)
    echoes = tuple(_req(smp.OP_WRITE, smp.GROUP_OS, 0, {"d": "e%d" % i}, seq=i) for i in range(modem.QUEUE + 1))
    replies, udp, _ = serve([echoes[:modem.QUEUE]])
    assert [cbor.loads(r[8:])["r"] for r in replies] == ["e%d" % i for i in range(modem.QUEUE)]
    assert udp.answered == modem.QUEUE and udp.sock.dropped == 0
    replies, udp, _ = serve([echoes])
    assert len(replies) == modem.QUEUE and udp.answered == modem.QUEUE and udp.sock.dropped == 1
