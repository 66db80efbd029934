# meter-fuzz inside the MicroPython VM (run by meter_fuzz/vm.py; MICROPYPATH holds the probes, meter_fuzz/ and the
# firmware). One JSON line per result on stdout.
#   micropython vm_main.py PROBE replay FILE...                      one line per file: its verdict
#   micropython vm_main.py PROBE mutate SEED RUNS MAXLEN DICT FILE...  a line per finding, then {"done": ..}
# A verdict is "ok", "rejected" (a documented error), "exception" or "violation", as on CPython (meter_fuzz/oracle).
import io
import json
import random
import sys

import fuzzcore
import mutate


def _trace(e):
    buf = io.StringIO()
    sys.print_exception(e, buf)
    return buf.getvalue()


def judge(probe, data):
    try:
        probe.run(data)
    except probe.ERRORS as e:
        return {"verdict": "rejected", "error": type(e).__name__, "message": str(e)[:200]}
    except fuzzcore.Violation as e:
        return {"verdict": "violation", "error": "Violation", "message": str(e)[:500], "tb": _trace(e)}
    except Exception as e:
        return {"verdict": "exception", "error": type(e).__name__, "message": str(e)[:500], "tb": _trace(e)}
    return {"verdict": "ok"}


def _read(path):
    with open(path, "rb") as f:
        return f.read()


class _Rng:
    def randrange(self, n):
        return random.randrange(n)


def main():
    probe = __import__(sys.argv[1])
    if hasattr(probe, "setup"):
        probe.setup()
    if sys.argv[2] == "replay":
        for path in sys.argv[3:]:
            rec = judge(probe, _read(path))
            rec["file"] = path
            print(json.dumps(rec))
        print(json.dumps({"done": True}))
        return
    seed, runs, max_len = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    tokens = mutate.parse_dictionary(_read(sys.argv[6]).decode()) if sys.argv[6] != "-" else []
    corpus = [_read(p) for p in sys.argv[7:]] or [b""]
    random.seed(seed)
    rng = _Rng()
    seen = {}
    execs = 0
    for k in range(runs):
        base = corpus[k] if k < len(corpus) else corpus[rng.randrange(len(corpus))]
        data = base if k < len(corpus) else mutate.mutate(base, rng, max_len, tokens, corpus[rng.randrange(len(corpus))])
        rec = judge(probe, data)
        execs += 1
        if rec["verdict"] in ("exception", "violation"):
            key = rec["error"] + rec["tb"][-200:]
            if key not in seen:
                seen[key] = 1
                rec["input"] = data.hex()
                print(json.dumps(rec))
    print(json.dumps({"done": True, "execs": execs}))


main()
