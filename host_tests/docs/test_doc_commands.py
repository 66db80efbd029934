"""Every `ota` and `meter-emu` command the docs show runs against an emulated meter, so the docs cannot drift from the
tools.

What runs. The fenced blocks tagged sh, bash, shell or console in README.md and docs/*.md; in them, each line that
invokes `ota` or `meter-emu` (bare, as the guides write them, or as .venv/bin/...), with `\\` continuations joined.
Other lines (make, smpmgr, mpremote, `. .venv/bin/activate`) are not run. Each doc runs in its own temporary folder
holding copies of firmware/ and keys/ and a link to .venv, so relative paths (`firmware`, `keys/dev/...`,
`state/pico`) mean what they mean in a checkout and every output stays in the folder. The doc's lines run in order,
each through bash with .venv/bin first on PATH, and must exit 0.

How a line is read:
- a `# comment` that ends in `exit N`: the line must exit N;
- ` [--opt ...]` is optional: the line runs without it, then with every optional part;
- placeholders: the value of `--port` when it is `P`, `PORT` or `/dev/tty...` is the console of the doc's emulated
  meter (the `meter` mark below; started at its first use, at 921600 baud, the line rate of the Pico's USB CDC
  console); `--key K` is the development command key; `--meter ID` is that meter's id (`ota info`);
- `meter-emu run` without `--for` runs until Ctrl-C: it is started in the background (a trailing `&` is dropped)
  and the next line runs once its STATE/endpoints.json exists (the board has booted and printed its console). It
  gets SIGINT (Ctrl-C) before a `meter-emu replay` of the file it records to (`--record`), and SIGTERM at the end;
- speed: the emulators the test starts, and a `meter-emu run` line that sets no `--speed` (and records nothing),
  boot at `--speed max` and then run at 1x (`ctl set speed=1`, the doc's own speed): an idle meter at max speed
  keeps a core busy. A doc that waits on device time says so with a mark (`ctl set speed=max`);
- `--watch` runs until Ctrl-C: it gets SIGINT after its second refresh (a table's `front end` line, or a JSON line)
  and must then exit 0.

Marks: HTML comments (invisible when the doc is rendered) before a block (the next block after the mark):
    <!-- docs-test: meter BOARD [blank] -->  the meter placeholders mean from here to the end of the doc (default
                                             esp32_devkitc); `blank`: a board fresh from MicroPython (`run --blank`)
    <!-- docs-test: setup COMMAND -->        run COMMAND (bash, in the doc's folder) before the block; placeholders
                                             as above, and `--state STATE` is the meter's state folder
    <!-- docs-test: at "TEXT" COMMAND -->    run COMMAND before the block's first line that contains TEXT
    <!-- docs-test: after "TEXT" COMMAND --> run COMMAND after each form of a line that contains TEXT, as part of
                                             it: a check that the line did what the doc says it does
    <!-- docs-test: file NAME -->            the next block's text is file NAME in every doc's folder
    <!-- docs-test: file NAME: TEXT -->      file NAME holds TEXT (one line), in every doc's folder
    <!-- docs-test: hardware REASON -->      the block needs a real board: not run, reported as a skip
    <!-- docs-test: skip REASON -->          not run, reported as a skip
    <!-- docs-test: known-bug "TEXT" WHAT --> the line containing TEXT fails today through a bug in ota, meter-emu or
                                             the firmware (not in the doc): the doc's test is then reported as xfail
                                             naming WHAT, and with a warning once the line passes (remove the mark);
                                             WHAT starting `intermittent:` is a bug that shows now and then: no warning
Keep the skips few: nearly everything a guide does to a board works on `meter-emu`, `ota provision` included.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from host_tests.emu import BIN, Emulator

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"sh", "bash", "shell", "console"}
TOOLS = {"ota", "meter-emu"}
DEV_COMMAND_KEY = "keys/dev/command-DEVELOPMENT-ONLY-ed25519.pem"  # relative: the doc's folder has a copy of keys/
DEFAULT_BOARD = "esp32_devkitc"
LINE_TIMEOUT = 120

FENCE = re.compile(r"^(\s*)```\s*([\w-]*)\s*$")
MARK = re.compile(r"^\s*<!--\s*docs-test:\s*(.*?)\s*-->\s*$")
OPTIONAL = re.compile(r" \[(--[^\[\]]*)\]")
EXPECT = re.compile(r"\bexit (\d+)\s*$")
PLACEHOLDER_PORT = re.compile(r"(--port\s+)(P|PORT|/dev/tty\w+)(?=\s|$)")
PLACEHOLDER_KEY = re.compile(r"(--key\s+)K(?=\s|$)")
PLACEHOLDER_ID = re.compile(r"(--meter\s+)ID(?=\s|$)")
PLACEHOLDER_STATE = re.compile(r"(--state\s+)STATE(?=\s|$)")
PLACEHOLDER = re.compile(r"[A-Z][A-Z_]*")
PLACEHOLDERS = {"P", "PORT", "K", "ID"}
QUOTED = re.compile(r"""^(["'])(.*?)\1\s*(.*)$""")


# -- reading the docs -------------------------------------------------------------------------------------------------

@dataclass
class Line:
    no: int  # 1-based, in the doc
    text: str  # the command, comment removed, continuations joined
    comment: str
    expect: int = 0

    @property
    def tool(self) -> str | None:
        words = self.text.split()
        name = Path(words[0]).name if words else ""
        return name if name in TOOLS else None


@dataclass
class Block:
    doc: Path
    no: int  # the fence's line
    lang: str
    text: str
    marks: list[tuple[int, str]] = field(default_factory=list)

    def lines(self) -> list[Line]:
        out: list[Line] = []
        pending, first = "", 0
        for i, raw in enumerate(self.text.splitlines()):
            code, comment = split_comment(raw)
            if not pending:
                first = self.no + 1 + i
            if code.rstrip().endswith("\\"):
                pending += code.rstrip()[:-1] + " "
                continue
            code = (pending + code).strip()
            pending = ""
            if code:
                m = EXPECT.search(comment)
                out.append(Line(first, code, comment.strip(), int(m.group(1)) if m else 0))
        return out

    @property
    def where(self) -> str:
        return f"{rel(self.doc)}:{self.no}"


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def split_comment(line: str) -> tuple[str, str]:
    """The code and the `#` comment of a shell line (a # inside quotes, or inside a word, is not one)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], line[i + 1:]
    return line, ""


def blocks(doc: Path) -> list[Block]:
    """Every fenced block of a doc with the docs-test marks on the lines just before it."""
    out: list[Block] = []
    marks: list[tuple[int, str]] = []
    lines = doc.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = MARK.match(lines[i])
        f = FENCE.match(lines[i])
        if m:
            marks.append((i + 1, m.group(1)))
        elif f:
            indent = len(f.group(1))
            j = i + 1
            body = []
            while j < len(lines) and lines[j].strip() != "```":
                body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j].lstrip())
                j += 1
            out.append(Block(doc, i + 1, f.group(2).lower(), "\n".join(body), marks))
            marks = []
            i = j
        i += 1
    if marks:
        raise ValueError(f"{rel(doc)}:{marks[0][0]}: a docs-test mark not followed by a block")
    return out


def parse_mark(text: str) -> tuple[str, list[str], str]:
    """(kind, arguments, rest) of a mark's text."""
    kind, _, rest = text.partition(" ")
    rest = rest.strip()
    if kind in ("at", "after", "known-bug"):
        m = QUOTED.match(rest)
        if m:
            return kind, [m.group(2)], m.group(3)
        text, _, after = rest.partition(" ")
        return kind, [text], after.strip()
    if kind == "file":
        name, colon, content = rest.partition(":")
        return kind, [name.strip()], content.strip() if colon else ""
    if kind == "meter":
        return kind, rest.split(), ""
    return kind, [], rest


KINDS = {"meter", "setup", "at", "after", "file", "hardware", "skip", "known-bug"}


def doc_files() -> dict[str, str]:
    """The files the docs' `file` marks define (all docs: one doc's example is another's input)."""
    files: dict[str, str] = {}
    for doc in DOCS:
        for b in blocks(doc):
            for _, mark in b.marks:
                kind, args, content = parse_mark(mark)
                if kind == "file":
                    files[args[0]] = (content if content else b.text) + "\n"
    return files


def runnable_docs() -> list[Path]:
    return [d for d in DOCS if any(b.lang in SHELL_LANGS and any(ln.tool for ln in b.lines()) for b in blocks(d))]


# -- running a doc ----------------------------------------------------------------------------------------------------

class Failure(Exception):
    pass


@dataclass
class Outcome:
    ran: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    known_bugs: list[str] = field(default_factory=list)
    fixed_bugs: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class DocRun:
    """One doc's commands in order, in one folder, with the emulators they need."""

    def __init__(self, doc: Path, folder: Path, files: dict[str, str]):
        self.doc, self.dir = doc, folder
        self.env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONUNBUFFERED="1")
        self.meters: dict[tuple[str, bool], Emulator] = {}
        self.meter_spec: tuple[str, bool] = (DEFAULT_BOARD, False)
        self.ids: dict[tuple[str, bool], str] = {}
        self.background: list[tuple[list[str], subprocess.Popen]] = []
        self.out = Outcome()
        folder.mkdir(parents=True, exist_ok=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(ROOT / "firmware", folder / "firmware", ignore=ignore)
        shutil.copytree(ROOT / "keys", folder / "keys")
        (folder / ".venv").symlink_to(ROOT / ".venv")
        for name, text in files.items():
            (folder / name).write_text(text)

    # the emulated meter behind the placeholders
    def meter(self) -> Emulator:
        spec = self.meter_spec
        if spec not in self.meters:
            board, blank = spec
            emu = Emulator(self.dir / f"meter-{board}{'-blank' if blank else ''}", board=board, speed="max",
                           baud=921600, blank=blank)
            self.meters[spec] = emu
            emu.ctl("set", "speed=1")
        return self.meters[spec]

    def meter_id(self) -> str:
        if self.meter_spec not in self.ids:
            p = self.sh(f"ota info --port {self.meter().console} --json")
            if p.returncode != 0:
                raise Failure(f"ota info for the meter id: exit {p.returncode}\n{p.stdout}")
            self.ids[self.meter_spec] = json.loads(p.stdout)["meter_id"]
        return self.ids[self.meter_spec]

    def substitute(self, cmd: str) -> str:
        if PLACEHOLDER_PORT.search(cmd):
            cmd = PLACEHOLDER_PORT.sub(lambda m: m.group(1) + self.meter().console, cmd)
        if PLACEHOLDER_STATE.search(cmd):
            cmd = PLACEHOLDER_STATE.sub(lambda m: m.group(1) + str(self.meter().state), cmd)
        cmd = PLACEHOLDER_KEY.sub(lambda m: m.group(1) + DEV_COMMAND_KEY, cmd)
        if PLACEHOLDER_ID.search(cmd):
            cmd = PLACEHOLDER_ID.sub(lambda m: m.group(1) + self.meter_id(), cmd)
        return cmd

    def sh(self, cmd: str, timeout: float = LINE_TIMEOUT) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(["bash", "-c", cmd], cwd=self.dir, env=self.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            return subprocess.CompletedProcess(cmd, -1, out + f"\n(no end after {timeout} s)")

    # one command line of the doc
    def run(self, cmd: str) -> tuple[int, str]:
        cmd = self.substitute(cmd)
        words = shlex.split(cmd.rstrip("& "))
        tool = Path(words[0]).name
        if tool == "meter-emu" and words[1:2] == ["run"] and "--for" not in words:
            return self.start_background(cmd.rstrip("& "), words)
        if tool == "meter-emu" and words[1:2] == ["replay"]:
            self.stop_recorder(words[2] if len(words) > 2 else "")
        if "--watch" in words:
            return self.watch(cmd)
        p = self.sh(cmd)
        return p.returncode, p.stdout

    def start_background(self, cmd: str, words: list[str]) -> tuple[int, str]:
        state = self.dir / words[words.index("--state") + 1]
        boost = "--speed" not in words and "--record" not in words
        if boost:
            cmd += " --speed max"
        log = open(self.dir / f"bg-{len(self.background)}.log", "w+")
        proc = subprocess.Popen(["bash", "-c", "exec " + cmd], cwd=self.dir, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.background.append((words, proc))
        ready = state / "endpoints.json"
        deadline = time.monotonic() + 90
        while not ready.exists() and time.monotonic() < deadline:
            try:
                proc.wait(timeout=0.05)  # a condition wait: the board's endpoints, or the process ending
                break
            except subprocess.TimeoutExpired:
                pass
        if ready.exists() and boost:
            p = self.sh(f"meter-emu ctl --state {shlex.quote(str(state))} set speed=1")
            if p.returncode != 0:
                return p.returncode, p.stdout
        log.seek(0)
        text = log.read()
        if ready.exists():
            return 0, text
        return (proc.returncode if proc.returncode is not None else -1), text + "\n(no endpoints.json)"

    def stop_recorder(self, recording: str) -> None:
        for words, proc in self.background:
            if "--record" in words and words[words.index("--record") + 1] == recording and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=60)

    def watch(self, cmd: str) -> tuple[int, str]:
        proc = subprocess.Popen(["bash", "-c", "exec " + cmd], cwd=self.dir, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        lines: list[str] = []
        refreshed = threading.Condition()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                with refreshed:
                    lines.append(line)
                    refreshed.notify()
            with refreshed:
                lines.append("")  # the end
                refreshed.notify()

        def refreshes() -> int:
            return sum(1 for ln in lines if ln.startswith(("front end", "{")))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        with refreshed:
            done = refreshed.wait_for(lambda: refreshes() >= 2 or (lines and lines[-1] == ""), timeout=120)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
        reader.join(timeout=10)
        text = "".join(lines)
        if not done or refreshes() < 2:
            return (rc if rc else -1), text + "\n(fewer than two refreshes before it ended)"
        return rc, text

    def stop(self) -> None:
        """End every emulator this doc started, and the VMs under them (a wedged emulator killed with SIGKILL would
        leave its VM behind)."""
        left = [pid for _, proc in self.background for pid in descendants(proc.pid)]
        left += [pid for emu in self.meters.values() for pid in descendants(emu.proc.pid)]
        for _, proc in self.background:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        for emu in self.meters.values():
            emu.stop()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # the whole doc
    def run_doc(self) -> Outcome:
        for block in blocks(self.doc):
            self.run_block(block)
        return self.out

    def run_block(self, block: Block) -> None:
        setups: list[str] = []
        at: list[tuple[str, str]] = []
        after: list[tuple[str, str]] = []
        bugs: dict[str, str] = {}
        skip = None
        for _, mark in block.marks:
            kind, args, rest = parse_mark(mark)
            if kind == "meter":
                self.meter_spec = (args[0], "blank" in args[1:])
            elif kind == "setup":
                setups.append(rest)
            elif kind == "at":
                at.append((args[0], rest))
            elif kind == "after":
                after.append((args[0], rest))
            elif kind == "known-bug":
                bugs[args[0]] = rest
            elif kind in ("hardware", "skip"):
                skip = f"{kind}: {rest}"
        lines = [ln for ln in block.lines() if ln.tool] if block.lang in SHELL_LANGS else []
        if not lines:
            return
        if skip:
            self.out.skipped += [f"{self.where(ln)} `{ln.text}` ({skip})" for ln in lines]
            return
        for cmd in setups:
            self.setup(block, cmd)
        for ln in lines:
            for text, cmd in at:
                if text in ln.text:
                    self.setup(block, cmd)
            at = [(t, c) for t, c in at if t not in ln.text]
            bug = next((what for text, what in bugs.items() if text in ln.text), None)
            wrong = []
            for form in forms(ln.text):
                shown = f"{self.where(ln)} `{form}`"
                t0 = time.monotonic()
                try:
                    rc, output = self.run(form)
                    problem = None
                    if rc != ln.expect:
                        problem = f"exit {rc}, the doc expects {ln.expect}\n" + indent(tail(output))
                    for cmd in [c for text, c in after if text in form] if problem is None else []:
                        p = self.sh(self.substitute(cmd))
                        if p.returncode != 0:
                            problem = f"the check after it, `{cmd}`: exit {p.returncode}\n" + indent(tail(p.stdout))
                            break
                except Failure as e:
                    problem = str(e)
                self.out.ran.append(shown)
                self.out.seconds[shown] = time.monotonic() - t0
                if problem:
                    wrong.append(f"{shown}: {problem}")
            shown = f"{self.where(ln)} `{ln.text}`"
            if bug is None:
                self.out.failed += wrong
            elif wrong:
                self.out.known_bugs.append(f"{shown}: {bug} [{wrong[0].splitlines()[0]}]")
            elif not bug.startswith("intermittent:"):
                self.out.fixed_bugs.append(f"{shown}: passes now, remove its known-bug mark ({bug})")

    def setup(self, block: Block, cmd: str) -> None:
        try:
            p = self.sh(self.substitute(cmd))
        except Failure as e:
            raise Failure(f"{block.where}: setup `{cmd}`: {e}") from e
        if p.returncode != 0:
            self.out.failed.append(f"{block.where}: setup `{cmd}`: exit {p.returncode}\n" + indent(tail(p.stdout)))

    def where(self, ln: Line) -> str:
        return f"{rel(self.doc)}:{ln.no}"


def descendants(pid: int) -> list[int]:
    """The processes under `pid` now (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def forms(cmd: str) -> list[str]:
    """The line without its optional parts, then with all of them (one form when it has none)."""
    if not OPTIONAL.search(cmd):
        return [cmd]
    return [OPTIONAL.sub("", cmd), OPTIONAL.sub(lambda m: " " + m.group(1), cmd)]


def tail(text: str, n: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def indent(text: str) -> str:
    return "\n".join("    " + t for t in text.splitlines())


def run_doc(doc: Path, folder: Path, files: dict[str, str] | None = None) -> Outcome:
    run = DocRun(doc, folder, doc_files() if files is None else files)
    try:
        return run.run_doc()
    finally:
        run.stop()


# -- the tests --------------------------------------------------------------------------------------------------------

def test_marks_are_understood():
    """Every mark is one of the kinds above, its TEXT names a line of its block, and no doc's shell block runs a tool
    line the reader could not run (an unknown placeholder in capitals)."""
    problems = []
    for doc in DOCS:
        for b in blocks(doc):
            lines = b.lines() if b.lang in SHELL_LANGS else []
            for no, mark in b.marks:
                kind, args, rest = parse_mark(mark)
                where = f"{rel(doc)}:{no}"
                if kind not in KINDS:
                    problems.append(f"{where}: unknown docs-test mark {kind!r}")
                elif kind in ("at", "after", "known-bug") and not any(args[0] in ln.text for ln in lines):
                    problems.append(f"{where}: {kind} {args[0]!r} matches no line of the block")
                elif kind in ("at", "after", "setup", "known-bug", "hardware", "skip") and not rest:
                    problems.append(f"{where}: {kind} needs a command or a reason")
                elif kind == "meter" and not (ROOT / "boards" / f"{args[0]}.json").exists():
                    problems.append(f"{where}: no board {args[0]!r}")
            for ln in lines:
                unknown = [w for w in shlex.split(ln.text) if PLACEHOLDER.fullmatch(w) and w not in PLACEHOLDERS]
                if ln.tool and unknown:
                    problems.append(f"{rel(doc)}:{ln.no}: `{ln.text}`: {', '.join(unknown)} stand for nothing the test "
                                    "knows: write a value (and the choices in a comment)")
    assert not problems, "\n".join(problems)


INLINE = re.compile(r"`((?:ota|meter-emu) [^`]+)`")


def cli_options(tool: str, path: list[str]) -> tuple[list[str], set[str]]:
    """(the subcommand path found, the options it takes) of a command line's words, from the tool's click command
    (its console-script entry point)."""
    from importlib.metadata import entry_points

    import click

    (ep,) = entry_points(group="console_scripts", name=tool)
    cmd = ep.load()
    found: list[str] = []
    for w in path:
        sub = cmd.get_command(click.Context(cmd), w) if isinstance(cmd, click.Group) else None
        if sub is not None:  # (ota loads its commands when asked: ota_tool/cli COMMAND_MODULES)
            cmd = sub
            found.append(w)
    return found, {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}


def test_inline_commands_name_real_options():
    """The commands the docs mention inline (`ota push ... --reset-wait 240` in a sentence) cannot all run, but each
    names subcommands and options the tools have."""
    problems = []
    for doc in DOCS:
        text = re.sub(r"\s*\n\s*", " ", doc.read_text())
        for m in INLINE.finditer(text):
            cmd = m.group(1)
            words = cmd.split()
            names = [w for w in words[1:] if re.fullmatch(r"[a-z][a-z0-9/-]*", w)]
            slashed = next((w for w in names if "/" in w), None)  # `ota push/confirm/reset --key K`: each of them
            for alt in slashed.split("/") if slashed else [None]:
                found, options = cli_options(words[0], [alt if w == slashed else w for w in names])
                used = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", cmd))
                missing = sorted(o for o in used if o not in options)
                if missing:
                    problems.append(f"{rel(doc)}: `{cmd}`: `{' '.join([words[0], *found])}` has no "
                                    + ", ".join(missing))
    assert not problems, "\n".join(problems)


def test_a_wrong_command_fails(tmp_path):
    """The runner catches a doc line that does not work, and honours an expected exit code (offline commands: no
    emulator)."""
    doc = tmp_path / "doc.md"
    doc.write_text("```sh\nota keygen -o k.pem\nota getpub k.pem --format pem\nota getpub k.pem --format nope\n"
                   "ota getpub missing.pem   # a missing input file: exit 2\n```\n")
    out = run_doc(doc, tmp_path / "run", files={})
    assert len(out.ran) == 4
    assert len(out.failed) == 1 and "--format nope" in out.failed[0], out.failed


@pytest.mark.slow
@pytest.mark.parametrize("doc", runnable_docs(), ids=lambda d: str(rel(d)))
def test_doc_commands_run(doc, tmp_path):
    out = run_doc(doc, tmp_path / "doc")
    slowest = sorted(out.seconds.items(), key=lambda kv: -kv[1])[:8]
    print(f"{len(out.ran)} commands; the slowest:\n" + "\n".join(f"{t:6.1f} s  {c}" for c, t in slowest))
    for fixed in out.fixed_bugs:
        warnings.warn(fixed, stacklevel=1)
    if out.skipped:
        print("not run:\n" + "\n".join(out.skipped))
    assert out.ran, "no command ran"
    assert not out.failed, f"{len(out.failed)} of {len(out.ran)} doc commands failed:\n" + "\n".join(out.failed)
    if out.known_bugs:
        pytest.xfail(f"{len(out.ran)} commands ran, known bugs in the tools: " + "; ".join(out.known_bugs))


MARKED = [(b, mark) for d in DOCS for b in blocks(d) for _, mark in b.marks
          if parse_mark(mark)[0] in ("hardware", "skip")]
if MARKED:
    @pytest.mark.parametrize("block,mark", MARKED, ids=[b.where for b, _ in MARKED])
    def test_marked_blocks_are_reported(block, mark):
        kind, _, reason = parse_mark(mark)
        pytest.skip(f"{block.where}: {kind}: {reason}")
