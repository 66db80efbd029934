# Runs firmware test modules inside the MicroPython VM and prints one JSON line per test.
# usage: micropython vm_runner.py <module> [<module> ...]   (sys.path is set by the caller through MICROPYPATH)
import json
import sys

try:
    import io
except ImportError:
    io = None


def _trace(e):
    if io is None:
        return repr(e)
    buf = io.StringIO()
    sys.print_exception(e, buf)
    return buf.getvalue()


def run(name):
    try:
        mod = __import__(name)
    except Exception as e:  # an import error fails every test of the module
        print(json.dumps({"module": name, "test": "<import>", "outcome": "failed", "detail": _trace(e)}))
        return
    for attr in sorted(dir(mod)):
        if not attr.startswith("test_"):
            continue
        fn = getattr(mod, attr)
        if not callable(fn):
            continue
        try:
            fn()
            rec = {"module": name, "test": attr, "outcome": "passed"}
        except Exception as e:
            rec = {"module": name, "test": attr, "outcome": "failed", "detail": _trace(e)}
        print(json.dumps(rec))


for _name in sys.argv[1:]:
    run(_name)
print(json.dumps({"done": True}))
