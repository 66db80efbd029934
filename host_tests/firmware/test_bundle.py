import json
import os

import fwtest
from loader import LOADER_API, bundle, image

BUDGET = 64 * 1024


def _trust():
    return [{"key": bytes.fromhex(t["key"]), "roles": t["roles"], "dev": t["dev"]}
            for t in json.loads(fwtest.fixture("trust.json"))]


def _staged(name, fn, budget=BUDGET):
    """fn(file, info) on a staged, accepted image: a real file, as the device streams the bundle from its staging
    file through the native decompressor."""
    data = fwtest.fixture("bundle_%s.img" % name)
    back = fwtest.workdir()
    try:
        fwtest.write("staged.img", data)
        with open("staged.img", "rb") as f:
            info = image.read(f, len(data), budget)
            image.accept(info, _trust(), "esp32_devkitc", LOADER_API, 5, 10, True)
            return fn(f, info)
    finally:
        os.chdir(back)


def _check(name, budget=BUDGET):
    return _staged(name, lambda f, info: bundle.check(f, info, budget), budget)


def _reason(name, budget=BUDGET):
    try:
        _check(name, budget)
    except bundle.BundleError as e:
        return e.reason
    return None


def test_a_good_bundle_streams_and_checks():
    m = _check("good")
    assert [f["path"] for f in m["files"]] == ["app/__init__.mpy", "app/main.mpy"]


def test_each_bundle_problem_is_named():
    cases = {
        "dotdot": bundle.B_PATH,
        "absolute": bundle.B_PATH,
        "outside_app": bundle.B_PATH,
        "shadow": bundle.B_SHADOW,
        "board": bundle.B_AGREE,
        "counter": bundle.B_AGREE,
        "hash": bundle.B_HASH,
        "trailing": bundle.B_FORMAT,
        "short": bundle.B_FORMAT,
        "corrupt": bundle.B_FORMAT,
        "truncated": bundle.B_FORMAT,
    }
    for name, want in cases.items():
        assert _reason(name) == want, (name, _reason(name))
    assert _reason("good", budget=2000) == bundle.B_OVERSIZE


def test_safe_paths():
    for p in ("app/a.mpy", "app/x/y.mpy"):
        assert bundle.safe_path(p), p
    for p in ("", "/app/a.mpy", "app/../a", "app//a", "app/./a", "boot.py", "app\\a", 5, None):
        assert not bundle.safe_path(p), p



def test_a_manifest_kind_of_any_other_type_is_a_format_refusal():
    info = {"board": b"esp32_devkitc", "loader_api": LOADER_API, "version": "1.2.3+4", "counter": 5}
    for k in ([], {}, ["app"], 1, None, "other"):
        m = {"format": 1, "board": "esp32_devkitc", "loader_api": LOADER_API, "version": "1.2.3+4",
             "security_counter": 5, "kind": k, "files": []}
        e = fwtest.raises(bundle.BundleError, bundle.check_manifest, m, info, BUDGET)
        assert e.reason == bundle.B_FORMAT, k
