# The staged upload and what judges it: the upload's file and its record, the anti-rollback counter, the room an
# image may take, and the one acceptance check that both the image group (after the last upload chunk) and the
# installer (at boot, again, trusting nothing from before) run on it.
#   meter/upload.img    the upload as received (appended chunk by chunk)
#   meter/upload.json   {"len": n, "sha": hex|None}: the upload under way, so a reset can resume it
#   meter/counter.json  {"counter": n}: the confirmed image's security counter; images below it are refused
# The counter is raised only by a confirmation (loader/update.py), after the image proved itself, so a power cut
# before that leaves the old counter and the old app: the older image stays installable until the new one is proven.
import os

from micropython import const

from loader import LOADER_API, store, strict

STAGING = "meter/upload.img"
UPLOAD_REC = "meter/upload.json"
COUNTER = "meter/counter.json"
# an image's counter may be at most this far above the stored one (ota_tool/device_policy.py reads it from here)
MAX_COUNTER_STEP = const(16)


def slot_budget(board):
    """Bytes an image may occupy: a quarter of the filesystem (two slots, staging and the meter's data). ota reads
    this function from here (ota_tool/device_policy.py)."""
    return board["flash"]["block_size"] * board["flash"]["block_count"] // 4


def stored_counter():
    try:
        rec = store.read_json(COUNTER, {})
    except ValueError:
        rec = {}
    n = rec.get("counter", 0) if isinstance(rec, dict) else 0
    return n if strict.is_int(n, 0) else 0


def check_staged(board):
    """The staged upload's image info (loader/image.py read) when it passes the signed-image policy for this board
    and meter (trust store, board, loader API, counter window, mode, slot budget). Raises image.Rejected, or
    OSError when there is no staged file."""
    # Deferred for RAM: the installer imports this module at every boot, the verifier (image, and trust with
    # ed25519 and sha512) only matters when an upload is there to judge.
    from loader import image, mode, trust

    return image.check_file(STAGING, trust.load(), board["id"], LOADER_API, stored_counter(), MAX_COUNTER_STEP,
                            mode.current() == mode.DEVELOPMENT, slot_budget(board))


def discard():
    """Remove the staged upload and its record (the file first: a cut between leaves the record of an upload with
    no bytes, which the next upload starts afresh, rather than a file as large as an image that nothing claims)."""
    for p in (STAGING, UPLOAD_REC):
        try:
            os.remove(p)
        except OSError:
            pass
