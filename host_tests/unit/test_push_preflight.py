"""`ota push` refuses on the host what the meter would refuse, before anything is sent: since issue 17 the meter
checks the bundle inside a signed image only when it installs it, after the reset, so the host runs the device's own
bundle check (firmware/loader/bundle.py through ota_tool/device_policy.py) on the image first."""

from __future__ import annotations

from pathlib import Path

import pytest

from ota_tool import push
from ota_tool.errors import ImageRejected

FIXTURES = Path(__file__).resolve().parents[1] / "firmware" / "fixtures"
STATUS = {"mode": "development", "counter": 5, "max_step": 16, "budget": 4096 * 512 // 4}


def test_a_good_bundle_passes():
    push.preflight((FIXTURES / "bundle_good.img").read_bytes(), STATUS, "esp32_devkitc")


@pytest.mark.parametrize("name, reason", [("hash", "file-hash"), ("dotdot", "manifest-path"),
                                          ("absolute", "manifest-path"), ("shadow", "shadowed-py"),
                                          ("board", "manifest-mismatch"), ("counter", "manifest-mismatch"),
                                          ("trailing", "bundle-format"), ("short", "bundle-format")])
def test_a_signed_bundle_the_meter_would_not_install_is_refused_naming_why(name, reason):
    with pytest.raises(ImageRejected) as e:
        push.preflight((FIXTURES / f"bundle_{name}.img").read_bytes(), STATUS, "esp32_devkitc")
    assert e.value.reason == reason and "would refuse to install" in str(e.value)
