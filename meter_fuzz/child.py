"""One fuzzing process (`python -m meter_fuzz.child CONFIG-JSON`), started by `engine.run`: the coverage-guided
engine (atheris, libFuzzer) or the built-in seeded mutation engine, on one target. Findings go straight into their
folders; a status file (execs, seconds, new findings) is rewritten twice a second for the parent's progress bar."""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

from meter_fuzz import findings, mutate, oracle, targets


class Session:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.out = Path(cfg["out"])
        self.target = targets.load(cfg["target"])
        self.status_path = Path(cfg["status"])
        self.execs = 0
        self.new: list[str] = []
        self.hits = 0
        self.t0 = time.monotonic()
        self.last_status = 0.0
        self.mem_every = int(cfg.get("mem_every") or 0)
        self.slow_ms = cfg.get("slow_ms")
        setup = getattr(self.target.probe, "setup", None)
        if setup is not None:
            setup()

    def one(self, data: bytes) -> oracle.Verdict:
        self.execs += 1
        check_mem = bool(self.mem_every) and self.execs % self.mem_every == 0
        verdict = oracle.execute(self.target, data, slow_ms=self.slow_ms, check_memory=check_mem)
        if verdict.kind == "memory" and self.cfg["engine"] == "atheris":
            # atheris's instrumentation allocates on its own (value profile): the parent checks the input again in
            # a process without it before it becomes a finding
            suspects = Path(self.cfg["artifacts"] + "suspects")
            suspects.mkdir(exist_ok=True)
            (suspects / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)
        elif verdict.is_finding:
            f = findings.Finding.from_verdict(self.target.name, verdict, data, engine=self.cfg["engine"],
                                              seed=self.cfg["seed"], board=self.cfg.get("board", ""))
            folder, is_new = findings.save(f, data, self.out)
            if is_new:
                self.new.append(str(folder))
                self.status()  # at once: libFuzzer ends the process with exit(), past Python's atexit
            else:
                self.hits += 1
        now = time.monotonic()
        if now - self.last_status > 0.5:
            self.status()
        return verdict

    def status(self, done: bool = False) -> None:
        self.last_status = time.monotonic()
        rec = {"execs": self.execs, "seconds": round(self.last_status - self.t0, 3), "new": self.new,
               "hits": self.hits, "done": done}
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec))
        tmp.replace(self.status_path)


def run_builtin(s: Session) -> None:
    cfg = s.cfg
    rng = random.Random(cfg["seed"])
    own = Path(cfg["corpus"])
    own.mkdir(parents=True, exist_ok=True)
    corpus = s.target.seed_inputs() + [p.read_bytes() for p in sorted(own.iterdir()) if p.is_file()]
    corpus = corpus or [b""]
    tokens = mutate.parse_dictionary(s.target.dictionary.read_text()) if s.target.dictionary else []
    host_mutator = s.target.extra("mutator")
    seen: set[tuple[str, str, str]] = set()
    for data in list(corpus):  # the corpus itself first, as libFuzzer does
        s.one(data)
    runs, seconds = cfg.get("runs"), cfg.get("seconds")
    max_len = cfg["max_len"]
    while True:
        if runs is not None and s.execs >= runs:
            break
        if seconds is not None and time.monotonic() - s.t0 >= seconds:
            break
        base = corpus[rng.randrange(len(corpus))]
        if host_mutator is not None and rng.randrange(2):
            data = host_mutator(base, max_len, rng.randrange(1 << 32))
        else:
            data = mutate.mutate(base, rng, max_len, tokens, corpus[rng.randrange(len(corpus))])
        v = s.one(data)
        key = (v.kind, v.error, v.message[:40])  # a new kind of answer stands in for new coverage
        if key not in seen and not v.is_finding:
            seen.add(key)
            corpus.append(data)
            (own / hashlib.sha1(data).hexdigest()).write_bytes(data)


def run_atheris(s: Session) -> None:
    import atheris

    cfg = s.cfg
    host_mutator = s.target.extra("mutator")

    def test_one_input(data: bytes) -> None:
        s.one(bytes(data))

    custom = None
    if host_mutator is not None:
        def custom(data: bytes, max_size: int, seed: int) -> bytes:
            if seed & 1:  # half raw libFuzzer mutation, half structure-aware
                return atheris.Mutate(data, max_size)
            return host_mutator(bytes(data), max_size, seed)

    corpus = Path(cfg["corpus"])
    corpus.mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], str(corpus)]
    if s.target.corpus_dir.is_dir():
        argv.append(str(s.target.corpus_dir))
    argv += [f"-seed={cfg['seed']}", f"-max_len={cfg['max_len']}", "-timeout=10", "-rss_limit_mb=4096",
             f"-artifact_prefix={cfg['artifacts']}", "-print_final_stats=1"]
    if s.target.extra("VALUE_PROFILE") is not False:  # comparisons as feedback: past magic numbers, at a cost
        argv.append("-use_value_profile=1")
    if cfg.get("runs") is not None:
        argv.append(f"-runs={cfg['runs']}")
    if cfg.get("seconds") is not None:
        argv.append(f"-max_total_time={max(1, int(cfg['seconds']))}")
    if s.target.dictionary:
        argv.append(f"-dict={s.target.dictionary}")
    if custom is not None:
        atheris.Setup(argv, test_one_input, custom_mutator=custom)
    else:
        atheris.Setup(argv, test_one_input)
    atheris.Fuzz()  # ends the process (libFuzzer's exit()): the parent reads execs and edges from the log


def instrumented(cfg: dict) -> None:
    """atheris instruments the firmware modules and the probe as they are imported (coverage feedback)."""
    import atheris

    from meter_fuzz import paths

    paths.firmware_on_path()
    import importlib.util

    spec = importlib.util.find_spec(cfg["target"])
    if spec is None or spec.origin is None:
        raise targets.UnknownTarget(cfg["target"])
    # the firmware modules the target names (not the whole firmware: an Ed25519 check that only gates a parser
    # would cost every input its instrumentation), the probe, and what the host extra adds (INSTRUMENT)
    modules = [_module_name(m) for m in _probe_modules(spec.origin)] or ["app", "loader", "cbor", "smp_serial"]
    include = [*targets.names(), "fuzzcore", *modules]  # every probe: one may build on another
    with atheris.instrument_imports(include=include):
        t = targets.load(cfg["target"])
    extra = t.extra("INSTRUMENT")
    if extra:
        with atheris.instrument_imports(include=list(extra)):
            for name in extra:
                importlib.import_module(name)


def _probe_modules(origin: str) -> list[str]:
    """The probe's MODULES, read from its source without importing it (an import now would be uninstrumented);
    [] when the probe takes them from another module."""
    import ast

    for node in ast.parse(Path(origin).read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "MODULES" for t in node.targets):
            return [str(v) for v in ast.literal_eval(node.value)]
    return []


def _module_name(path: str) -> str:
    """"lib/cbor.py" -> "cbor", "loader/commands.py" -> "loader.commands" (as a board imports them)."""
    p = path.removesuffix(".py")
    return p.removeprefix("lib/").replace("/", ".")


def main() -> None:
    cfg = json.loads(sys.argv[1])
    sys.argv = sys.argv[:1]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if cfg["engine"] == "atheris":
        instrumented(cfg)
    s = Session(cfg)
    try:
        if cfg["engine"] == "atheris":
            run_atheris(s)
        else:
            run_builtin(s)
    except KeyboardInterrupt:
        pass
    s.status(done=True)


if __name__ == "__main__":
    main()
