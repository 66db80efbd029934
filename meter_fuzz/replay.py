"""`python -m meter_fuzz.replay TARGET DIR...`: run every file of the given corpus folders through the target once
(no time or memory oracle) and print how many ran; used under coverage.py by meter_fuzz/cover.py.
`python -m meter_fuzz.replay --memory TARGET FILE...`: each file under the memory oracle, one JSON verdict per line
(the check of an atheris child's memory suspects, in a process without atheris's instrumentation)."""

import json
import sys
from pathlib import Path

from meter_fuzz import oracle, targets


def main() -> None:
    if sys.argv[1] == "--memory":
        t = targets.load(sys.argv[2])
        files = [(name, Path(name).resolve()) for name in sys.argv[3:]]  # a probe may chdir into its scratch folder
        setup = getattr(t.probe, "setup", None)
        if setup is not None:
            setup()
        for name, path in files:
            v = oracle.execute(t, path.read_bytes(), slow_ms=None, check_memory=True)
            print(json.dumps({"file": name, "kind": v.kind, "message": v.message, "peak": v.peak_bytes}))
        return
    t = targets.load(sys.argv[1])
    setup = getattr(t.probe, "setup", None)
    if setup is not None:
        setup()
    n = 0
    for d in [Path(a).resolve() for a in sys.argv[2:]]:
        p = d
        for f in sorted(p.iterdir()) if p.is_dir() else []:
            if f.is_file():
                oracle.execute(t, f.read_bytes(), slow_ms=None)
                n += 1
    print(n)


if __name__ == "__main__":
    main()
