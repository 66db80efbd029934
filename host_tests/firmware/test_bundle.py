import json

import fwtest
from loader import bundle, image

BUDGET = 64 * 1024


class _Mem:
    def __init__(self, data):
        self.d = bytes(data)
        self.p = 0

    def read(self, n=-1):
        n = len(self.d) - self.p if n is None or n < 0 else n
        out = self.d[self.p:self.p + n]
        self.p += len(out)
        return out

    def readinto(self, mv):
        n = min(len(mv), len(self.d) - self.p)
        mv[:n] = self.d[self.p:self.p + n]
        self.p += n
        return n

    def seek(self, pos):
        self.p = pos


def _trust():
    return [{"key": bytes.fromhex(t["key"]), "roles": t["roles"], "dev": t["dev"]}
            for t in json.loads(fwtest.fixture("trust.json"))]


def _check(name, budget=BUDGET):
    data = fwtest.fixture("bundle_%s.img" % name)
    f = _Mem(data)
    info = image.read(f, len(data), budget)
    image.accept(info, _trust(), "esp32_devkitc", 1, 5, 10, True)
    return bundle.check(f, info, budget)


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
    }
    for name, want in cases.items():
        assert _reason(name) == want, (name, _reason(name))
    assert _reason("good", budget=2000) == bundle.B_OVERSIZE


def test_safe_paths():
    for p in ("app/a.mpy", "app/x/y.mpy"):
        assert bundle.safe_path(p), p
    for p in ("", "/app/a.mpy", "app/../a", "app//a", "app/./a", "boot.py", "app\\a", 5, None):
        assert not bundle.safe_path(p), p
