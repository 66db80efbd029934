"""Hypothesis: every parser of untrusted image, trust-store and envelope bytes — host and device — only ever fails
with its own documented error, whatever the input."""

from __future__ import annotations

import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from host_tests.firmware.fixtures import make_images
from loader import bundle as dev_bundle
from loader import envelope as dev_envelope
from loader import image as dev_image
from loader import trust as dev_trust
from ota_tool import image as host_image

GOOD = (make_images.HERE / "bundle_good.img").read_bytes()
ENV = (make_images.HERE / "env_good.cbor").read_bytes()
TRUST = [{"key": bytes.fromhex(t["key"]), "roles": t["roles"], "dev": t["dev"]}
         for t in json.loads((make_images.HERE / "trust.json").read_text())]


def mutated(base: bytes):
    return st.one_of(
        st.binary(max_size=len(base) + 64),
        st.tuples(st.integers(0, len(base) - 1), st.integers(1, 255)).map(
            lambda t: base[: t[0]] + bytes([base[t[0]] ^ t[1]]) + base[t[0] + 1:]),
        st.integers(0, len(base)).map(lambda n: base[:n]),
        st.tuples(st.integers(0, len(base)), st.binary(min_size=1, max_size=16)).map(
            lambda t: base[: t[0]] + t[1] + base[t[0]:]),
    )


@settings(max_examples=400, deadline=None)
@given(mutated(GOOD))
def test_image_parsers_fail_only_with_their_errors(data):
    try:
        host_image.parse(data)
    except host_image.ImageError:
        pass
    f = io.BytesIO(data)
    try:
        info = dev_image.read(f, len(data), 1 << 20)
        dev_image.accept(info, TRUST, "esp32_devkitc", 1, 5, 10, True)
        dev_bundle.check(f, info, 1 << 20)
    except (dev_image.Rejected, dev_bundle.BundleError):
        pass


@settings(max_examples=300, deadline=None)
@given(mutated(ENV))
def test_envelope_and_trust_parsers_fail_only_with_their_errors(data):
    try:
        dev_envelope.open_envelope(data, TRUST, "m-1", 1_800_000_000, lambda i: False)
    except dev_envelope.EnvelopeError:
        pass
    try:
        dev_trust.check(data)
    except dev_trust.TrustError:
        pass
