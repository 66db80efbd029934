# The loader's update journal: a short persisted log of update events (installed, confirmed, rollback, recovery,
# command, command-refused, ...) in meter/update-events.json, the last _EVENTS_KEPT of them. The whole list is
# replaced atomically at each event (store.write_json), so a power cut leaves the log before or after the event,
# never a damaged one; a log that is damaged all the same (flash fault) starts again empty. The supply's own event
# ring is app/events.py: the app attaches to this journal and takes the update events it cares about into its ring.
import time

from micropython import const

from loader import store

EVENTS = "meter/update-events.json"
_EVENTS_KEPT = const(8)
_BURST_MS = const(30000)  # refused commands write this log at most once in this long (anyone can send them)
# events of this boot from before the app attached (a rollback, an install at boot) wait here for it
_PENDING_MAX = const(8)
_pending = [("", "")][:0]
_sink = [lambda kind, detail: None][:0]


def event(kind, detail="", burst=None):
    """Record an update event. `burst`: the caller's [ends ticks_ms or None, held, newest detail] for refusals anyone
    can provoke: within a burst only the first is written; the others are counted into one entry written before the
    next burst's first."""
    print("update: %s %s" % (kind, detail))
    now = time.ticks_ms()
    if burst is not None and burst[0] is not None and time.ticks_diff(burst[0], now) > 0:
        burst[1] += 1
        burst[2] = detail
        return
    try:
        log = store.read_json(EVENTS, [])
    except ValueError:
        log = []
    if not isinstance(log, list):
        log = []
    # entries of another shape are damage, not carried on: the list is written back (a value nested past
    # MicroPython's recursion limit made json.dump raise out of the start-up)
    log = [{"event": e["event"], "detail": e["detail"]} for e in log[-_EVENTS_KEPT:]
           if type(e) is dict and type(e.get("event")) is str and type(e.get("detail")) is str]
    if burst is not None:
        if burst[1]:
            log.append({"event": kind, "detail": "+%d more, the last: %s" % (burst[1], burst[2])})
        burst[:] = [time.ticks_add(now, _BURST_MS), 0, ""]
    log.append({"event": kind, "detail": detail})
    store.write_json(EVENTS, log[-_EVENTS_KEPT:])
    if _sink:
        _sink[0](kind, detail)
    elif len(_pending) < _PENDING_MAX:
        _pending.append((kind, detail))


def attach(sink):
    """sink(kind, detail) for every update event from now on, and first for those of this boot so far (a rollback
    or an install the loader did before the app started)."""
    _sink[:] = [sink]
    while _pending:
        kind, detail = _pending.pop(0)
        sink(kind, detail)
