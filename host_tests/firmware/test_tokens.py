from app import tokens as tk


def test_out_of_order_tokens_count_once_and_old_ones_are_refused():
    w = tk.TokenWindow()
    for tid in (5, 3, 4, 1, 2):
        assert w.check(tid) is None
        w.mark(tid)
    for tid in (1, 2, 3, 4, 5):
        assert w.check(tid) == tk.E_REPLAYED
    assert w.check(70) is None
    w.mark(70)
    assert w.check(6) == tk.E_TOO_OLD and w.check(7) is None and w.check(70) == tk.E_REPLAYED
    w.mark(7)
    assert w.check(7) == tk.E_REPLAYED
    w.mark(10000)  # far ahead: the whole window moves
    assert w.check(9999) is None and w.check(10000) == tk.E_REPLAYED and w.check(9936) == tk.E_TOO_OLD
    for bad in (0, -1, True, "5", 1.0):
        assert w.check(bad) == tk.E_BAD_ID


def test_record_round_trips_and_refuses_damage():
    w = tk.TokenWindow()
    for tid in (9, 2, 4):
        w.mark(tid)
    back = tk.TokenWindow()
    back.restore(w.record())
    assert back.record() == w.record() and back.check(4) == tk.E_REPLAYED and back.check(3) is None
    for bad in ([1], [0, 1], [5, 0], [-1, 1], [1, 1 << 64], "x"):
        try:
            tk.TokenWindow().restore(bad)
            raise AssertionError("restored %r" % (bad,))
        except ValueError:
            pass
