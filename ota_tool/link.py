"""A meter's SMP link over a serial port, through smpclient: connect, request, and errors turned into OtaError."""

from __future__ import annotations

import asyncio
from typing import Any

from smp.exceptions import SMPException
from smpclient import SMPClient
from smpclient.exceptions import SMPBadSequence
from smpclient.generics import error, error_v1, error_v2, success
from smpclient.transport.serial import SMPSerialTransport

from .errors import DeviceRefused, DeviceTimeout, NoDevice

DEFAULT_TIMEOUT = 5.0
# what a frame lost or damaged on the line looks like to smpclient: no answer, an answer to an earlier request, or
# bytes that do not decode (bad delimiter, CRC, CBOR)
LINE_ERRORS = (TimeoutError, SMPBadSequence, SMPException, ValueError)


class MeterLink:
    def __init__(self, port: str, baud: int = 115200, timeout: float = DEFAULT_TIMEOUT):
        self.port = port
        self.baud = baud
        self.timeout = timeout
        self._client: SMPClient | None = None

    async def __aenter__(self) -> MeterLink:
        transport = SMPSerialTransport(baudrate=self.baud)
        self._client = SMPClient(transport, self.port, timeout_s=self.timeout)
        try:
            await self._client.connect()
        except Exception as e:  # pyserial raises SerialException for a missing or busy port
            raise NoDevice(f"cannot open {self.port}: {e}") from e
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._client is not None:
            await self._client.disconnect()

    async def request(self, req: Any, what: str, retries: int = 0) -> Any:
        """Send one request; `retries` > 0 only for requests that are safe to repeat (reads, idempotent writes),
        so a frame lost or corrupted on the line is sent again."""
        assert self._client is not None
        for attempt in range(retries + 1):
            try:
                rsp = await self._client.request(req)
                break
            except LINE_ERRORS as e:
                if attempt == retries:
                    raise DeviceTimeout(f"{what}: no valid answer from {self.port} within {self.timeout:g} s"
                                        + (f" ({retries + 1} tries)" if retries else "")) from e
                await asyncio.sleep(0.1)
        if success(rsp):
            return rsp
        if error(rsp):
            if error_v2(rsp):
                raise DeviceRefused(what, int(rsp.err.rc), int(rsp.err.group))
            if error_v1(rsp):
                raise DeviceRefused(what, int(rsp.rc))
        raise DeviceRefused(what, 1)


def run(coro: Any) -> Any:
    return asyncio.run(coro)
