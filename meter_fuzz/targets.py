"""The fuzz targets: every probe module under probes/, with what only the host adds to it.

A target's host extras live in meter_fuzz/host/<name>.py (for a tester's own probe folder, in <name>_host.py beside
the probe; both optional) and may define:
    differential(data, result)  raise fuzzcore.Violation when a reference library disagrees with the firmware
                                (`result` is what the probe returned, or the documented error it raised)
    mutator(data, max_size, seed) -> bytes   a structure-aware mutation (atheris custom mutator; the built-in
                                engine uses it for half of its mutations)
    seeds() -> iterable of bytes             inputs that generate the committed seed corpus
    INSTRUMENT = ["ed25519", ...]            more modules for atheris to instrument (coverage feedback) than the
                                             probe's MODULES, which always are
    VALUE_PROFILE = False                    libFuzzer without -use_value_profile (on by default: it gets past magic
                                             numbers and checksums, at some exec/s; off where it finds nothing more)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from meter_fuzz import paths

NOT_TARGETS = {"fuzzcore", "__init__"}


class UnknownTarget(LookupError):
    pass


@dataclass
class Target:
    name: str
    probe: ModuleType
    host: ModuleType | None = None
    summary: str = ""
    errors: tuple[type[BaseException], ...] = field(default_factory=tuple)
    modules: tuple[str, ...] = ()

    @property
    def corpus_dir(self) -> Path:
        """The committed seeds: meter_fuzz/corpus/<name>, or corpus/<name> beside a tester's own probe folder."""
        own = Path(self.probe.__file__ or "").resolve().parent
        if own != paths.PROBES_DIR:
            return own / "corpus" / self.name
        return paths.CORPUS_DIR / self.name

    @property
    def dictionary(self) -> Path | None:
        own = Path(self.probe.__file__ or "").resolve().parent
        p = (own / "dicts" if own != paths.PROBES_DIR else paths.DICTS_DIR) / f"{self.name}.dict"
        return p if p.exists() else None

    def seed_inputs(self) -> list[bytes]:
        """The committed seed corpus (sorted by file name, so every run starts from the same inputs)."""
        if not self.corpus_dir.is_dir():
            return []
        return [p.read_bytes() for p in sorted(self.corpus_dir.iterdir()) if p.is_file()]

    def extra(self, name: str) -> Any:
        return getattr(self.host, name, None) if self.host is not None else None

    @property
    def module_files(self) -> list[Path]:
        return [paths.FIRMWARE_DIR / m for m in self.modules]


def names() -> list[str]:
    """Every probe module; `_name.py` is a helper several probes share, `name_host.py` a tester's host extra."""
    return sorted({p.stem for d in paths.probe_dirs() for p in d.glob("*.py")
                   if p.stem not in NOT_TARGETS and not p.stem.endswith("_host") and not p.stem.startswith("_")})


def load(name: str) -> Target:
    if name not in names():
        raise UnknownTarget(f"no fuzz target named {name!r}; `meter-fuzz list` names them: {', '.join(names())}")
    paths.firmware_on_path()
    probe = importlib.import_module(name)
    host = None
    # the package's targets keep their host extras in meter_fuzz/host/; a tester's own beside the probe (<name>_host.py)
    for mod in (f"meter_fuzz.host.{name}", f"{name}_host"):
        try:
            host = importlib.import_module(mod)
            break
        except ModuleNotFoundError as e:
            if e.name not in (mod, mod.rsplit(".", 1)[0]):
                raise
    doc = (probe.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return Target(name=name, probe=probe, host=host, summary=doc, errors=tuple(probe.ERRORS),
                  modules=tuple(probe.MODULES))


def load_all() -> list[Target]:
    return [load(n) for n in names()]
