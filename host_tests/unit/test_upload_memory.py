"""ota_tool/upload.py against a meter whose heap has no block for a whole chunk: a chunk answered "out of memory"
(MCUmgr rc 2) goes again at half the size, one chunk in flight, down to CHUNK_FLOOR; the image arrives whole and in
order. A full run's docs test (field-team.md's `ota push`) was refused at 20 of 53 kB this way by an emulated meter
whose heap was in pieces."""

from __future__ import annotations

import asyncio
import struct

import cbor2
import pytest
from smp import image_management as im
from smpclient.requests.image_management import ImageUploadWrite

from ota_tool import upload as uploading
from ota_tool.link import MeterLink
from ota_tool.smp_udp import Rto


class TightMeter:
    """Takes a chunk at its offset when its data fits in `room` bytes, else answers rc 2 (ENOMEM), as the firmware's
    SMP server does when the chunk's bytes find no block."""

    def __init__(self, room: int):
        self.room = room
        self.image = bytearray()
        self.refused = 0
        self.sizes: list[int] = []
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    async def send(self, frame: bytes) -> None:
        req = im.ImageUploadWriteRequest.loads(frame)
        self.sizes.append(len(req.data))
        if len(req.data) > self.room:
            self.refused += 1
            body = cbor2.dumps({"rc": 2})
            head = bytearray(bytes(im.ImageUploadWriteResponse(off=0, sequence=req.header.sequence))[:8])
            struct.pack_into(">H", head, 2, len(body))
            await self.replies.put(bytes(head) + body)
            return
        if req.off == len(self.image):
            self.image += req.data
        await self.replies.put(bytes(im.ImageUploadWriteResponse(off=len(self.image), sequence=req.header.sequence)))

    async def receive(self) -> bytes:
        return await self.replies.get()


def maximize(size: int):
    def make(req: ImageUploadWrite, data: bytes) -> ImageUploadWrite:
        piece = data[req.off:req.off + size]
        return (ImageUploadWrite(off=0, data=piece, image=0, len=req.len, sha=req.sha) if req.off == 0
                else ImageUploadWrite(off=req.off, data=piece))
    return make


def run(meter: TightMeter, data: bytes, window: int = 2) -> uploading.Stats:
    return asyncio.run(uploading.upload(meter, maximize(1900), data, window=window, rto=Rto(0.5, 0.1), first_wait=1.0,
                                        decode=lambda req, frame: MeterLink.decode(None, req, frame)))  # type: ignore[arg-type]


def test_chunks_the_meter_has_no_room_for_go_again_smaller_and_the_image_arrives_whole():
    data = bytes(range(256)) * 40  # 10 kB
    meter = TightMeter(room=700)
    st = run(meter, data)
    assert bytes(meter.image) == data
    assert meter.refused == 2 and st.chunk_cap == 475  # 1900 -> 950 -> 475, then every chunk fits
    assert max(meter.sizes[meter.sizes.index(475):]) == 475


def test_a_meter_with_room_for_every_chunk_sees_the_link_s_size_throughout():
    data = bytes(5000)
    meter = TightMeter(room=4096)
    st = run(meter, data)
    assert bytes(meter.image) == data and meter.refused == 0 and st.chunk_cap is None
    assert meter.sizes[0] == 1900


def test_out_of_memory_at_the_floor_is_refused_with_the_meter_s_answer():
    meter = TightMeter(room=uploading.CHUNK_FLOOR - 1)
    with pytest.raises(uploading.Refused) as e:
        run(meter, bytes(3000))
    assert uploading._rc(e.value.rsp) == 2 and min(meter.sizes) == uploading.CHUNK_FLOOR
