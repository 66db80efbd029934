import fwtest
from app import events as ev


def test_ring_keeps_the_newest_with_sequence_numbers_across_reboots():
    def body():
        now = [1000]
        log = ev.EventLog(capacity=5, clock=lambda: now[0])
        log.load()
        for k in range(8):
            now[0] += 1
            assert log.add(ev.LOAD_DISCONNECTED if k % 2 else ev.LOAD_CONNECTED, "credit") == k + 1
        assert [e[0] for e in log.ring] == [4, 5, 6, 7, 8] and log.ring[-1] == [8, 301, 1008, "credit"]
        again = ev.EventLog(capacity=5)  # power cut and boot: the clock unknown until it is set
        again.load()
        assert again.ring == log.ring and again.add(ev.POWER_RESTORE) == 9
        assert again.ring[-1] == [9, 102, None, ""] and [e[0] for e in again.since(7)] == [8, 9]
        assert again.since(0, limit=2) == again.ring[:2]
        again.add(ev.TOKEN_REJECTED, "x" * 200)
        assert len(again.ring[-1][3]) == ev.DETAIL_MAX

    fwtest.in_workdir(body, "meter")


def test_a_damaged_log_restarts_without_reusing_sequence_numbers():
    def body():
        log = ev.EventLog(capacity=4)
        log.load()
        for _ in range(30):
            log.add(ev.CREDIT_ALERT, "10")
        with open(ev.PATH, "rb") as f:
            raw = f.read()
        fwtest.write(ev.PATH, raw[: len(raw) // 2])  # flash damage: not what a power cut leaves (renames are atomic)
        back = ev.EventLog(capacity=4)
        back.load()
        assert back.ring[-1][1] == ev.LOG_LOST and back.ring[-1][0] > 30 and len(back.ring) == 1

    fwtest.in_workdir(body, "meter")
