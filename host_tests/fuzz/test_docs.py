"""Every `meter-fuzz` line in docs/security-testing.md and README.md names a real command with real options
(parsed by the CLI itself, not run: campaigns and attacks take minutes), so the testers' guide cannot drift."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from meter_fuzz.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / "security-testing.md", ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)\s*$")


def doc_lines() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        lang = None
        for line in doc.read_text().splitlines():
            m = FENCE.match(line.strip())
            if m:
                lang = m.group(1) if lang is None else None
                continue
            if lang in ("sh", "bash", "shell") and line.strip().startswith("meter-fuzz "):
                cmd = re.split(r"\s#\s", line)[0].strip()
                cmd = re.sub(r" \[(--[^\[\]]*)\]", r" \1", cmd)  # an optional part: parse it too
                out.append((doc.name, cmd))
    return out


LINES = doc_lines()


def test_the_docs_show_meter_fuzz():
    assert len(LINES) >= 10


@pytest.mark.parametrize("doc,cmd", LINES, ids=[f"{d}:{c[:60]}" for d, c in LINES])
def test_each_documented_line_parses(doc, cmd):
    args = shlex.split(cmd)[1:]
    args = [a.replace("KIND-SIG", "x").replace("TARGET", "cbor_decode") for a in args]
    ctx = click.Context(main, info_name="meter-fuzz")
    name, sub, rest = main.resolve_command(ctx, args)
    assert sub is not None, cmd
    try:
        sub.make_context(name, list(rest), parent=ctx)
    except click.BadParameter as e:  # a path the doc names (a finding folder) need not exist here
        assert "does not exist" in str(e), f"{doc}: {cmd}: {e}"
