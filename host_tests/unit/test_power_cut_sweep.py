"""Power cuts at every flash operation of a whole update (upload, verification, state write, install at boot, test
boot, confirm), over a real littlefs on CPython (host_tests/lfs_meter.py): after power returns the meter boots a valid
signed app, old or new and never a mix, and rerunning the push completes the update. Plain cuts at every operation
of the firmware's own app on the Pico, every 100th in this suite; torn writes and the ESP32's geometry sampled more
thinly (the report command `python -m host_tests.bench.power_cut_sweep`, in `make sweeps`, runs every point of both
boards, with a 76 kB app too). Plus a
hypothesis state machine of uploads, installs, resets, confirms, bad images and power cuts between and inside them."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from host_tests import lfs_meter as L
from meterkit.boards import load_board

OLD = "0.1.0"


@pytest.fixture(autouse=True)
def _host_os_back():
    yield
    L.unbind()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    out = {}
    for board in ("rpi_pico", "esp32_devkitc"):
        out[board] = {
            "1.5.0": L.build_image(board, "1.5.0", 1, d),
            "1.6.0": L.build_image(board, "1.6.0", 2, d),
            "1.0.1": L.build_image(board, "1.0.1", 0, d),
        }
        bad = bytearray(out[board]["1.6.0"])
        bad[-10] ^= 0x40  # inside the signature
        out[board]["bad-signature"] = bytes(bad)
    return out


@pytest.fixture(scope="module")
def provisioned():
    cache = {}

    def get(board_id):
        if board_id not in cache:
            board = load_board(board_id)
            m = L.Meter(board)
            cache[board_id] = (board, bytes(m.snapshot()))
            L.unbind()
        return cache[board_id]

    return get


def test_cut_points_of_an_update_recover_on_the_pico(images, provisioned):
    """Every 100th flash operation of a whole update is a cut point (every one: `make sweeps`)."""
    board, base = provisioned("rpi_pico")
    img = images["rpi_pico"]["1.5.0"]
    n = L.total_ops(board, base, img)
    assert n > 100
    points = list(range(1, n + 1, 100)) + [n + 1]
    outcomes = [L.sweep_point(board, base, img, OLD, "1.5.0", k, 0) for k in points]
    assert sum(o["cut"] for o in outcomes) == len(points) - 1  # each chosen operation was cut; the last run had none
    seen = {o["after_cut"] for o in outcomes}
    assert seen == {OLD, "1.5.0"}  # early cuts keep the old app, late ones already run the new one


@pytest.mark.parametrize(("board_id", "permanent"), [("rpi_pico", False), ("esp32_devkitc", False),
                                                      ("rpi_pico", True)])
def test_torn_writes_and_permanent_installs_sampled(images, provisioned, board_id, permanent):
    board, base = provisioned(board_id)
    img = images[board_id]["1.5.0"]
    n = L.total_ops(board, base, img, permanent)
    for k in range(1 + n % 160, n + 1, 160):
        L.sweep_point(board, base, img, OLD, "1.5.0", k, torn=1 + (k * 37) % 200, permanent=permanent)


def test_cut_points_of_a_loader_update_recover(tmp_path, provisioned):
    """Every 124th cut point of a loader image (every one: the report command). Stage 0 (boot.py's own code) always finds a whole loader folder, old or new; the new one is
    confirmed through the app's self-test, and a rerun completes an interrupted update."""
    board, base = provisioned("rpi_pico")
    img = L.build_image("rpi_pico", "1.1.0", 1, tmp_path, kind="loader")
    n = L.total_ops(board, base, img)
    assert n > 50
    points = list(range(1, n + 1, 124)) + [n + 1]  # the last: no cut
    outcomes = [L.sweep_point(board, base, img, "1.0.0", "1.1.0+0", k, 0, kind="loader") for k in points]
    assert {o["after_cut"] for o in outcomes} == {"1.0.0", "1.1.0+0"}


def test_the_oracle_sees_a_mix():
    board = load_board("rpi_pico")
    m = L.Meter(board)
    m.check_slot()
    path = "slots/" + m.ctx.slot + "/app/main.mpy"
    with m.vol.open(path, "r+b") as f:
        f.write(b"\x00")
    with pytest.raises(AssertionError, match="differs from its manifest"):
        m.check_slot()


class UpdateMachine(RuleBasedStateMachine):
    """Any sequence of what a field engineer, a bad actor and the mains can do to one meter."""

    board_id = "rpi_pico"
    imgs: dict = {}
    base: bytes = b""

    def __init__(self):
        super().__init__()
        board = load_board(self.board_id)
        m = L.Meter.__new__(L.Meter)
        m.board = board
        m.bs, m.bc = board["flash"]["block_size"], board["flash"]["block_count"]
        m.flash = L.CutFlash(len(self.base))
        m.flash.buffer[:] = self.base
        m.formatted = 0
        m.vol = L.Volume(m.flash, m.bs, m.bc)
        m._bind()
        m.boot()
        self.m = m
        self.allowed = {OLD}  # versions confirmed (by the app, by a push, or marked permanent) at some point
        self.counter = 0
        self.counters = {"1.5.0": 1, "1.6.0": 2, "1.0.1": 0, OLD: 0}

    def _cut(self, fn, after_ops, torn):
        self.m.arm(after_ops, torn)
        try:
            fn()
        except L.PowerCut:
            pass
        self.m.flash.cut_at = None
        self.m.power_up()

    @rule(name=st.sampled_from(["1.5.0", "1.6.0", "1.0.1", "bad-signature"]), part=st.floats(0.05, 1.0))
    def upload(self, name, part):
        data = self.imgs[name]
        n = max(1, int(len(data) * part))
        st_ = self.m.upload(data) if n == len(data) else self._partial(data, n)
        if name in ("bad-signature",) and n == len(data):
            assert st_["state"] == "rejected" and st_["reason"] == "bad-signature"

    def _partial(self, data, n):
        g = self.m.group
        sha = hashlib.sha256(data).digest()
        rsp = g.upload({"off": 0, "len": len(data), "sha": sha, "data": data[:min(n, 512)]})
        off = rsp["off"]
        while off < n:
            rsp = g.upload({"off": off, "data": data[off:min(n, off + 512)]})
            off = rsp["off"]
        return g.update_status({})

    @rule(permanent=st.booleans())
    def mark(self, permanent):
        g = self.m.group
        if g.state == "accepted" and g.staged:
            g.state_write({"hash": g.staged["hash"], "confirm": permanent})
            if permanent:
                self.allowed.add(g.staged["version"].split("+")[0])

    @rule()
    def reset(self):
        from loader import update

        settled = not self.m.ctx.test_boot and update.pending() is None
        before = self.m.ctx.app_version
        self.m.reset()
        if settled:  # a confirmed app with nothing pending is never reverted by a reset
            assert self.m.ctx.app_version == before and not self.m.ctx.test_boot

    @precondition(lambda self: self.m.ctx.test_boot)
    @rule()
    def app_confirms(self):
        self.m.confirm()
        self.allowed.add(self.m.ctx.app_version)

    @rule(name=st.sampled_from(["1.5.0", "1.6.0"]), after=st.integers(1, 160), torn=st.sampled_from([0, 0, 7, 300]))
    def power_cut_during_push(self, name, after, torn):
        self._cut(lambda: self._push(name), after, torn)

    def _push(self, name):
        if self.counters[name] < self.m.counter():
            st_ = self.m.upload(self.imgs[name])
            assert st_["state"] == "rejected" and st_["reason"] == "counter-too-low", st_
        else:
            self.allowed.add(name)  # the push confirms it (a cut may come before or after the confirm)
            self.m.push(self.imgs[name])

    @rule(after=st.integers(1, 8))
    def power_cut_during_boot(self, after):
        self._cut(self.m.reset, after, 0)

    @invariant()
    def boots_a_valid_signed_app(self):
        assert self.m.formatted == 0
        assert self.m.ctx.slot is not None
        self.m.check_slot()
        v = self.m.ctx.app_version
        assert v in self.counters
        # only a test boot may run a version nobody confirmed: an unconfirmed one is rolled back at the next reset
        assert v in self.allowed or self.m.ctx.test_boot, (v, self.allowed)

    @invariant()
    def counter_never_drops_and_follows_confirmed_images(self):
        c = self.m.counter()
        assert c >= self.counter
        assert c <= max(self.counters[v] for v in self.allowed)
        self.counter = c


@pytest.mark.slow
def test_update_state_machine(images, provisioned):
    board, base = provisioned("rpi_pico")
    UpdateMachine.imgs = images["rpi_pico"]
    UpdateMachine.base = base
    run = UpdateMachine.TestCase()
    run.settings = settings(max_examples=20, stateful_step_count=12, deadline=None,
                            suppress_health_check=list(HealthCheck))
    run.runTest()
