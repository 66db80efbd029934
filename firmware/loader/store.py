# Power-fail-safe persistence: every change is written to a new file and renamed over the old one (littlefs renames
# are atomic), so a power cut leaves the old content or the new, never a mix. Stale temporaries are removed at boot.
import json
import os

TMP_SUFFIX = ".new"
_DIR = 0x4000


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def is_dir(path):
    try:
        return os.stat(path)[0] & _DIR != 0
    except OSError:
        return False


def makedirs(path):
    cur = ""
    for part in path.split("/"):
        if not part:
            cur = "/"
            continue
        cur = cur + part if cur in ("", "/") else cur + "/" + part
        if not exists(cur):
            os.mkdir(cur)


def read_bytes(path):
    """The file's content, or None when it does not exist. Read at its size, in one piece of the heap that size: a
    read to the end grows its buffer as it goes and asked for twice the file (a 283-byte trust store took 512 bytes,
    which an upload's check on a heap in 400-byte pieces did not find)."""
    try:
        with open(path, "rb") as f:
            return f.read(os.stat(path)[6])
    except OSError:
        return None


def write_atomic(path, data):
    tmp = path + TMP_SUFFIX
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def read_json(path, default=None):
    """Parsed JSON, `default` when the file is missing; ValueError when it exists but does not parse. Parsed from
    the open file, never read whole first: the event ring's 2.8 KB as one block once failed to allocate at a locked
    meter's start on a fragmented heap (meter-fuzz attack). A file that cannot be parsed in the whole heap (JSON
    nested a thousand deep: MemoryError on a board, a recursion error on CPython) is corrupt too; a MemoryError is
    first retried after a collection, so a good file read while the heap is busy is never called corrupt."""
    for again in (1, 0):
        try:
            with open(path, "rb") as f:
                return json.load(f)
        except OSError:
            return default
        except ValueError:
            break
        except (MemoryError, RuntimeError):
            if again:
                import gc

                gc.collect()
    raise ValueError("corrupt " + path)


def read_pointer(path, names):
    """A pointer file (slots, loader folders): its dict, with "active" one of `names`; a missing, unreadable or
    invalid file gives {"active": names[0]}."""
    try:
        st = read_json(path, {})
    except ValueError:
        st = {}
    if not isinstance(st, dict) or st.get("active") not in names:
        st = {"active": names[0]}
    return st


def write_json(path, obj, head="", dump=json.dump):
    """Replace `path` with `head` then obj as JSON, streamed into the temporary file: no copy of the whole text is
    built in RAM (a 3 KB event ring as one string once failed to allocate on a fragmented ESP32 heap). `dump(obj, f)`
    writes the JSON: an object kept packed in RAM (the app's event ring) writes itself piece by piece."""
    tmp = path + TMP_SUFFIX
    with open(tmp, "w") as f:
        if head:
            f.write(head)
        dump(obj, f)
        if head:
            f.write("}")
    os.rename(tmp, path)


def cleanup(top):
    """Remove temporaries a power cut left behind under `top`; returns how many."""
    n = 0
    if not is_dir(top):
        return 0
    for ent in os.ilistdir(top):
        p = top + "/" + ent[0]
        if ent[1] == _DIR:
            n += cleanup(p)
        elif ent[0].endswith(TMP_SUFFIX):
            os.remove(p)
            n += 1
    return n


# Versioned records: persistent data an app writes carries its kind and format version, so an app rolled back to an
# older version reads what it knows and refuses — without overwriting — what a newer version wrote.
class TooNew(ValueError):
    def __init__(self, path, version):
        super().__init__("%s: format %d is newer than this app reads" % (path, version))
        self.version = version


def read_record(path, kind, max_version, default=None):
    """(version, data) of the record at `path`, or (0, default) when there is none. Raises TooNew for a format
    above `max_version` and ValueError for a corrupt file or another kind of record."""
    rec = read_json(path)
    if rec is None:
        return 0, default
    if not isinstance(rec, dict) or rec.get("kind") != kind or not isinstance(rec.get("v"), int):
        raise ValueError("not a %s record: %s" % (kind, path))
    if rec["v"] > max_version:
        raise TooNew(path, rec["v"])
    return rec["v"], rec.get("data")


def write_record(path, kind, version, data, dump=json.dump, replace_newer=False):
    """Replace the record atomically; refuses (TooNew) to overwrite a record of a newer format, unless
    `replace_newer` (an explicit decision to drop it, such as the head-end's credit reset)."""
    v = _stored_version(path, kind)
    if v is not None and v > version and not replace_newer:
        v = _parsed_version(path, kind)  # a newer head: kept only when the whole record parses (else damaged)
        if v is not None and v > version:
            raise TooNew(path, v)
    write_json(path, data, '%s%d, "data": ' % (_head(kind), version), dump)


def _head(kind):
    return '{"kind": %s, "v": ' % json.dumps(kind)


def _stored_version(path, kind):
    """The format version of the `kind` record at `path`; None when missing, corrupt or of another kind (such a
    file may be replaced). Records this module wrote start with a fixed head, read without parsing the rest."""
    try:
        with open(path, "rb") as f:
            first = f.read(64)
    except OSError:
        return None
    pre = _head(kind).encode()
    if first.startswith(pre):
        end = first.find(b",", len(pre))
        try:
            return int(first[len(pre):end])
        except ValueError:
            return None
    return _parsed_version(path, kind)


def _parsed_version(path, kind):
    """_stored_version by parsing the whole file: a head alone does not make a record (a torn or damaged file can
    begin with one)."""
    try:
        rec = read_json(path)
    except ValueError:
        return None
    if isinstance(rec, dict) and rec.get("kind") == kind and isinstance(rec.get("v"), int):
        return rec["v"]
    return None
