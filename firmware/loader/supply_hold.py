# The supply held off: the one fact about the app's disconnect control the loader needs, in a record the loader owns
# (the app's own class-70 record, meter/disconnect.json, is the app's to change with any app update; the loader
# outlives those). Recovery mode opens the relay; before the next app starts, the loader closes it again unless this
# record says the app holds the supply off (then closing it would only flick the power on until the app's boot
# reconciliation opens it again).
#   meter/supply-hold.json   {"kind": "supply-hold", "v": 1, "data": {"held": true|false}}
# Written atomically (store.write_record: write-new-then-rename), so a cut leaves the old or the new record. The app
# writes it around its own record so that any cut between the two errs towards "held": "held" is written before the
# class-70 change that takes the supply off, "not held" only after the one that gives it back. The only
# disagreement a cut can leave is "held" while the app's record says connected, and then the loader merely leaves
# the relay to the app's reconciliation, which closes it. A missing record means not held (a new meter, an app that
# never held the supply off); a damaged one, or one in a format this loader does not read, means held.
from loader import store

PATH = "meter/supply-hold.json"
RECORD = "supply-hold"
RECORD_VERSION = 1


def held():
    """True when the app holds the supply off (or the record cannot be read: the relay is then left to the app)."""
    try:
        _, data = store.read_record(PATH, RECORD, RECORD_VERSION, None)
    except ValueError:  # damaged, another kind, or store.TooNew
        return True
    if data is None:
        return False
    return not (isinstance(data, dict) and data.get("held") is False)


def write(is_held):
    """Record whether the app holds the supply off; writes only a change (the app calls this at every class-70 save
    and at boot). A record of a newer format (a newer loader's, before it was rolled back) is left as it is: it
    reads as held, which is safe."""
    is_held = bool(is_held)
    try:
        _, data = store.read_record(PATH, RECORD, RECORD_VERSION, None)
    except store.TooNew:
        return
    except ValueError:
        data = None  # damaged: replaced
    if isinstance(data, dict) and data.get("held") is is_held:
        return
    store.write_record(PATH, RECORD, RECORD_VERSION, {"held": is_held})
