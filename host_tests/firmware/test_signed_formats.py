"""The signed records' own numbers (a format, a loader API, a security counter, a file size, a trust store's counter)
are compared by type and value: 1.0 and True equal 1 in Python, and MicroPython's isinstance(True, int) is False
where CPython's is True, so a loose check also made the two runtimes disagree. Each is refused before any signature
is checked."""

import io
import struct

import cbor
import fwtest
from loader import LOADER_API, bundle, envelope, trust

FILE = {"path": "app/main.mpy", "size": 10, "sha256": b"\x01" * 32}
MANIFEST = {"format": 1, "kind": "app", "board": "esp32_devkitc", "loader_api": LOADER_API, "version": "1.0.0",
            "security_counter": 3, "files": [FILE]}
INFO = {"board": b"esp32_devkitc", "loader_api": LOADER_API, "version": "1.0.0+0", "counter": 3}


def _bundle_reason(m):
    raw = cbor.dumps(m)
    try:
        got = bundle.read_manifest(io.BytesIO(bundle.MAGIC + struct.pack("<I", len(raw)) + raw))
        bundle.check_manifest(got, INFO, 1 << 20)
    except bundle.BundleError as e:
        return str(e)
    return None


def test_a_bundle_manifest_s_numbers():
    assert _bundle_reason(MANIFEST) is None
    for key, bad, why in (("format", True, "manifest fields"), ("format", 1.0, "manifest fields"),
                          ("loader_api", float(LOADER_API), "loader api"), ("loader_api", True, "loader api"),
                          ("security_counter", 3.0, "security counter")):
        m = dict(MANIFEST)
        m[key] = bad
        got = _bundle_reason(m)
        assert got is not None and why in got, (key, bad, got)
    got = _bundle_reason(dict(MANIFEST, files=[dict(FILE, size=True)]))
    assert got is not None and "file entry" in got, got


def _outer(body):
    return cbor.dumps({"body": cbor.dumps(body), "signer": b"\x00" * 8, "sig": b"\x00" * 64})


def test_an_envelope_s_format():
    body = {"format": 1, "cmd": "relay", "id": bytes(16), "exp": 1800000000, "args": {}}
    assert envelope.parse(_outer(body))[0]["cmd"] == "relay"
    for bad in (True, 1.0):
        e = fwtest.raises(envelope.EnvelopeError, envelope.parse, _outer(dict(body, format=bad)))
        assert e.reason == envelope.E_MALFORMED


def test_a_trust_store_s_format_and_counter():
    body = {"format": 1, "counter": 1, "keys": []}
    assert trust.parse(_outer(body))[0]["counter"] == 1
    for field, bad, why in (("format", True, "format"), ("format", 1.0, "format"), ("counter", True, "counter"),
                            ("counter", 1.0, "counter")):
        e = fwtest.raises(trust.TrustError, trust.parse, _outer(dict(body, **{field: bad})))
        assert str(e) == why, (field, bad, str(e))
