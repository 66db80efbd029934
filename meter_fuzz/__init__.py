"""meter-fuzz: fuzzing of every parser the meter exposes, for security testers.

Layers (docs/security-testing.md):
- `probes/` — one MicroPython-compatible module per target. It feeds one input to the firmware's own code and
  raises only the firmware's documented errors (`ERRORS`) or `fuzzcore.Violation` (an invariant broken). The same
  probe runs on CPython (coverage-guided, atheris) and inside the MicroPython VM (`repro --vm`, `run --vm`).
- `targets` (host) — finds the probes, adds what only CPython can do: differential checks against reference
  libraries (cbor2, cryptography, imgtool), structure-aware mutators, dictionaries, committed seed corpora.
- `oracle` — turns one execution into a verdict: a documented error is fine; any other exception, a violated
  invariant, an input slower than the time bound or one allocating beyond its memory bound is a finding.
- `engine` — the coverage-guided engine (atheris/libFuzzer, in a child process) and a seeded built-in mutation
  engine for machines without atheris and for the VM.
- `findings`, `minimize`, `stats`, `cover`, `vm` — one folder per finding, reproducers, delta debugging,
  per-target campaign figures, coverage.py over a corpus, the VM side.
- `cli` — the `meter-fuzz` command; the library modules hold no CLI concerns.
"""
