
import fwtest
from loader import trust


def test_missing_or_corrupt_store_trusts_nothing():
    def body():
        assert trust.load() == [] and trust.counter() == -1
        fwtest.write(trust.PATH, b"\xa1\x00")
        assert trust.load() == []
        v1 = bytearray(fwtest.fixture("trust_v1.cbor"))
        v1[-5] ^= 1  # inside the signature
        fwtest.write(trust.PATH, bytes(v1))
        assert trust.load() == []

    fwtest.in_workdir(body, "meter")


def test_first_store_then_a_root_signed_update_with_a_higher_counter():
    def body():
        b = trust.update(fwtest.fixture("trust_v1.cbor"))
        assert b["counter"] == 1 and trust.counter() == 1
        roles = sorted(r for k in trust.load() for r in k["roles"])
        assert roles == ["image", "root"]
        b2 = trust.update(fwtest.fixture("trust_v2.cbor"))
        assert b2["counter"] == 2
        # the dev image key was revoked by v2
        assert not any(k.get("dev") for k in trust.load())

    fwtest.in_workdir(body, "meter")


def test_updates_that_must_be_refused():
    def body():
        trust.update(fwtest.fixture("trust_v1.cbor"))
        for name, why in (("trust_v2_stranger.cbor", "not signed by a current root key"),
                          ("trust_v1.cbor", "counter not above 1"),
                          ("trust_v2_noroot.cbor", "no root key left"),
                          ("trust_v2_drops_signer.cbor", "signer not kept as a root key")):
            e = fwtest.raises(trust.TrustError, trust.update, fwtest.fixture(name))
            assert str(e) == why, (name, str(e))
        fwtest.raises(trust.TrustError, trust.update, b"\x00garbage")
        assert trust.counter() == 1  # nothing was replaced

    fwtest.in_workdir(body, "meter")


def test_a_store_not_signed_by_its_own_root_is_refused_as_first_store():
    def body():
        e = fwtest.raises(trust.TrustError, trust.update, fwtest.fixture("trust_v2_noroot.cbor"))
        assert str(e) == "signature"

    fwtest.in_workdir(body, "meter")
