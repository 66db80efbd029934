"""What every probe shares, on CPython and in the MicroPython VM alike (no typing, no f-strings with `=`, no
CPython-only modules).

A probe module defines:
    ERRORS   tuple of exception types the target documents for bad input (a verdict of "rejected", never a finding)
    MODULES  the firmware modules the target exercises ("lib/cbor.py", "app/bl0942.py"): coverage is measured on them
    run(data) feed one input (bytes) to the firmware; return a value for the host's differential check, or None
and may define:
    setup()  once per process, before the first input (e.g. a scratch folder)
    MEM_BASE, MEM_PER_BYTE   the memory oracle's bound: MEM_BASE + MEM_PER_BYTE * n bytes (CPython only), n the
             input's length, or mem_size(data) when the probe defines it and it is larger
    mem_size(data)  after run(data): how many bytes the firmware was given (a probe that builds a file from the
             input, as boot_records' structure-aware mutations do, gives the file's size)
"""


class Violation(Exception):
    """An invariant the target promises was broken (a state change without a signature, a persisted setting that
    makes start-up raise, a decoder that accepted what it must refuse, ...). Always a finding."""


def records(data, most=16):
    """The input as records `[u8 length][record]` (a record's length past the input's end takes what is left), at
    most `most` of them: an APDU sequence's form (cosem_apdu, dlms_utility)."""
    out = []
    i = 0
    n = len(data)
    while i < n and len(out) < most:
        k = data[i]
        out.append(bytes(data[i + 1:i + 1 + k]))
        i += 1 + k
    return out


def check(cond, what):
    if not cond:
        raise Violation(what)


def keep_loaded(*names):
    """Keep these modules imported for the probe's life: the firmware brings them in for one piece of work and
    forgets them after (their RAM: app/event_logs.py at each IS 15959 event and read of a log, app/events.py
    compartments; the installer and the bundle reader after an install at boot, loader/startup.py). A probe that did
    so would import them again for every input, a cost of the harness that the memory oracle would charge to the
    input (as the dlms_get probe keeps app/dlms_profiles.py). Module state they keep is theirs to reset."""
    import loader

    for name in names:
        __import__(name)
        _kept.add(name)
    if _real:
        return
    _real.append(loader.forget)

    def forget(name):
        if name not in _kept:
            _real[0](name)

    loader.forget = forget


def release_kept():
    """Undo keep_loaded (a test process that runs a probe and then the firmware's own tests)."""
    import loader

    if _real:
        loader.forget = _real.pop()
    _kept.clear()


_kept = set()  # type: set  # the modules keep_loaded keeps
_real = []  # type: list  # loader's own forget, once keep_loaded has wrapped it


_dirs = [0]


def scratch(name):
    """Make an empty scratch folder for one input, chdir into it and return the path; the folder of the previous
    input is removed first, so no state carries from one input to the next."""
    import os

    root = _root()
    base = "%s/meter-fuzz-%s-%d" % (root, name, _pid())
    try:
        os.chdir(root)
    except OSError:
        pass
    _rmtree(base)
    os.mkdir(base)
    os.chdir(base)
    return base


def _root():
    """/dev/shm where there is one (a folder's cycle costs 0.06 ms there, 3.7 ms on a disk-backed /tmp), else /tmp."""
    import os

    try:
        os.stat("/dev/shm")
        return "/dev/shm"
    except OSError:
        return "/tmp"


def _pid():
    import os

    if hasattr(os, "getpid"):
        return os.getpid()
    if not _dirs[0]:
        _dirs[0] = int.from_bytes(os.urandom(3), "big")
    return _dirs[0]


def _rmtree(path):
    import os

    try:
        entries = [e[0] for e in os.ilistdir(path)] if hasattr(os, "ilistdir") else os.listdir(path)
    except OSError:
        return
    for name in entries:
        p = path + "/" + name
        try:
            os.remove(p)
        except OSError:
            _rmtree(p)
    try:
        os.rmdir(path)
    except OSError:
        pass
