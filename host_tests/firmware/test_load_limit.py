from app import load_limit as ll


def run(lim, start, end, watts):
    out = []
    for t in range(start, end):
        r = lim.update(t, watts)
        if r is not None:
            out.append((t, r))
    return out


def test_trip_after_the_hold_time_restore_after_the_lockout_lock_after_n():
    lim = ll.LoadLimit(ll.parse({"threshold_w": 3000, "over_s": 10, "lockout_s": 60, "max_trips": 2,
                                 "forgive_s": 600}))
    assert run(lim, 0, 100, 3000) == []  # at the threshold is not over it
    assert run(lim, 100, 105, 4000) == [] and run(lim, 105, 106, 100) == []  # a short spike is forgiven
    assert run(lim, 106, 130, 4000) == [(116, ll.TRIP)]
    # the load is still there: off again after the hold, and the second trip locks
    assert run(lim, 130, 1000, 4000) == [(176, ll.RESTORE), (187, ll.LOCKED)]
    lim2 = ll.LoadLimit(ll.parse({"threshold_w": 3000, "over_s": 10, "lockout_s": 60, "max_trips": 2,
                                  "forgive_s": 600}))
    assert run(lim2, 0, 11, 4000) == [(10, ll.TRIP)]
    assert run(lim2, 11, 71, 4000) == [(70, ll.RESTORE)]
    assert run(lim2, 71, 1000, 4000) == [(81, ll.LOCKED)]  # stays off: no restore however long
    lim2.remote_reconnect()
    assert run(lim2, 1000, 1011, 4000) == [(1010, ll.TRIP)]  # the count starts again


def test_trips_are_forgiven_after_normal_use_and_zero_means_off():
    lim = ll.LoadLimit(ll.parse({"threshold_w": 3000, "over_s": 10, "lockout_s": 60, "max_trips": 2,
                                 "forgive_s": 600}))
    assert run(lim, 0, 11, 4000) == [(10, ll.TRIP)]
    assert run(lim, 11, 700, 500) == [(70, ll.RESTORE)]
    assert run(lim, 700, 711, 4000) == [(710, ll.TRIP)]  # 640 s of normal use: not a second strike
    off = ll.LoadLimit(ll.parse({}))
    assert run(off, 0, 100, 100000) == []
    for bad in ({"threshold_w": -1}, {"max_trips": 0}, {"over_s": 1.5}, {"x": 1}, []):
        try:
            ll.parse(bad)
            raise AssertionError("accepted %r" % (bad,))
        except ValueError:
            pass
