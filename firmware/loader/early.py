# Work done by boot.py before anything else: lock the console first when the meter is locked (so Ctrl-C cannot
# interrupt the boot), clean up what a power cut during a write may have left, and count the boot.
from loader import mode, store, strict

BOOTS = "meter/boots.json"


def count_boot():
    """Add one to the persistent boot counter and return it. An unreadable record restarts the count at 1."""
    try:
        rec = store.read_json(BOOTS, {})
    except ValueError:
        rec = {}
    n = rec.get("boots", 0) if isinstance(rec, dict) else 0
    if not strict.is_int(n, 0, 1 << 30):
        n = 0
    store.write_json(BOOTS, {"boots": n + 1})
    return n + 1


def run():
    m = mode.current()
    mode.apply(m)
    store.cleanup("meter")
    store.cleanup("slots")
    store.cleanup("loaders")
    count_boot()
    from loader import loaders

    reverted = loaders.take_revert_note()
    if reverted:
        from loader import journal  # only after a loader rollback: most boots write no event here

        journal.event("rollback", "loader %s was not confirmed" % reverted)
