"""Reading who a meter is: OS/application info, SMP buffer parameters, echo."""

from __future__ import annotations

from smpclient.requests.os_management import EchoWrite, MCUMgrParametersRead, OSApplicationInfoRead

from .link import READ_RETRIES, MeterLink

# every request here is a read or an echo: safe to send again when it or its answer is lost on the line (on a serial
# link READ_RETRIES more times; over UDP the transport resends it until the timeout)
INFO_FIELDS = {"s": "kernel", "n": "meter_id", "r": "micropython", "v": "app", "b": "build", "m": "board_name",
               "p": "arch", "i": "board", "o": "os"}


async def read_info(link: MeterLink) -> dict:
    out: dict = {}
    for ch, key in INFO_FIELDS.items():
        rsp = await link.request(OSApplicationInfoRead(format=ch), f"info {key}", retries=READ_RETRIES)
        out[key] = rsp.output
    params = await link.request(MCUMgrParametersRead(), "mcumgr parameters", retries=READ_RETRIES)
    out["buf_size"] = params.buf_size
    out["buf_count"] = params.buf_count
    return out


async def echo(link: MeterLink, text: str) -> str:
    # an echo changes nothing on the meter: safe to send again when it or its answer is lost
    rsp = await link.request(EchoWrite(d=text), "echo", retries=READ_RETRIES)
    return rsp.r


async def app_version(link: MeterLink) -> str:
    """What the meter runs: "app-X.Y.Z", or "recovery"."""
    rsp = await link.request(OSApplicationInfoRead(format="v"), "info app", retries=READ_RETRIES)
    return rsp.output


async def meter_id(link: MeterLink) -> str:
    rsp = await link.request(OSApplicationInfoRead(format="n"), "info meter id", retries=READ_RETRIES)
    return rsp.output


async def board_id(link: MeterLink) -> str:
    """The board id the meter reports (its board file's `id`)."""
    rsp = await link.request(OSApplicationInfoRead(format="i"), "info board", retries=READ_RETRIES)
    return rsp.output
