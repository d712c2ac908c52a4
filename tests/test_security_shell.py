"""The security pass, no shell: nothing in the package can reach a shell or run text as code (an AST
scan of every module, import aliases resolved), and template values can neither add nor split argv
elements, whether filled in directly or rendered from label values through the action engine."""

from __future__ import annotations

import ast
import inspect
import json
import os
import sys
import textwrap

import pytest

from qbconsole.model import Sample
from qbconsole.store import Store

from helpers import ROOT, package_modules

T0 = 1_700_000_000_000
PRINT_ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))"


# ---- no shell anywhere -------------------------------------------------------------------------
SHELL_FUNCTIONS = {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
                   "asyncio.create_subprocess_shell", "pty.spawn", "commands.getoutput"}
SHELL_PREFIXES = ("os.exec", "os.spawn", "os.posix_spawn")
SPAWNERS = {"subprocess.run", "subprocess.Popen", "subprocess.call", "subprocess.check_call",
            "subprocess.check_output", "asyncio.create_subprocess_exec"}
UNSAFE_LOADERS = {"pickle.load", "pickle.loads", "marshal.loads", "yaml.unsafe_load", "yaml.full_load",
                  "shelve.open"}


class ShellFinder(ast.NodeVisitor):
    """Calls that could reach a shell or run text as code, with ``import x as y`` resolved."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.found: list[tuple[int, str]] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def qualified(self, func: ast.expr) -> str:
        if isinstance(func, ast.Name):
            return self.names.get(func.id, func.id)
        if isinstance(func, ast.Attribute):
            return f"{self.qualified(func.value)}.{func.attr}"
        return "?"

    @staticmethod
    def stringy(node: ast.expr | None) -> bool:
        """A command given as one string: a literal, an f-string, concatenation, .format or a join."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, (str, bytes))
        if isinstance(node, ast.JoinedStr):
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
            return ShellFinder.stringy(node.left) or ShellFinder.stringy(node.right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return node.func.attr in ("format", "join") and not (
                isinstance(node.func.value, ast.Name) and node.func.value.id == "os")
        return False

    def visit_Call(self, node: ast.Call) -> None:
        name = self.qualified(node.func)
        for kw in node.keywords:
            if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                self.found.append((node.lineno, f"{name}(shell=...)"))
        if name in SHELL_FUNCTIONS or name.startswith(SHELL_PREFIXES):
            self.found.append((node.lineno, name))
        if name in ("eval", "exec", "builtins.eval", "builtins.exec", "__import__"):
            self.found.append((node.lineno, name))
        if name in UNSAFE_LOADERS:
            self.found.append((node.lineno, name))
        if name == "yaml.load" and not any(kw.arg == "Loader" and "Safe" in ast.unparse(kw.value)
                                           for kw in node.keywords):
            self.found.append((node.lineno, "yaml.load without a safe Loader"))
        if name in SPAWNERS:
            command = node.args[0] if node.args else next((kw.value for kw in node.keywords if kw.arg == "args"), None)
            if self.stringy(command):
                self.found.append((node.lineno, f"{name} with a command string"))
        self.generic_visit(node)


def shell_uses(tree: ast.Module) -> list[tuple[int, str]]:
    finder = ShellFinder()
    finder.visit(tree)
    return finder.found


def test_the_shell_scan_finds_what_it_looks_for():
    bad = textwrap.dedent("""
        import os, subprocess as sp, yaml, pickle
        from subprocess import check_output
        from asyncio import create_subprocess_shell
        os.system("ls")
        os.popen("ls")
        sp.run("ls -l", shell=True)
        sp.Popen(f"ls {x}")
        check_output("ls " + x)
        sp.call(["ls"], shell=flag)
        create_subprocess_shell("ls")
        eval("1 + 1")
        exec(code)
        os.execvp("ls", ["ls"])
        yaml.load(text)
        pickle.loads(blob)
        sp.run("ls {}".format(x))
    """)
    found = shell_uses(ast.parse(bad))
    assert {line for line, _ in found} == set(range(5, 18)), found  # every bad line, none missed
    good = "import subprocess, yaml\nsubprocess.run(['ls', '-l'], shell=False)\nyaml.load(t, Loader=yaml.SafeLoader)\n"
    assert shell_uses(ast.parse(good)) == []


def test_no_shell_anywhere():
    modules = package_modules()
    assert len(modules) > 100
    offenders = [f"{path.relative_to(ROOT)}:{line}: {what}" for path, tree in modules for line, what in shell_uses(tree)]
    assert offenders == []
    spawns = sum(1 for _, tree in modules for node in ast.walk(tree)
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                 and node.func.attr in ("Popen", "run", "create_subprocess_exec"))
    assert spawns >= 3  # the scan did see the places that start processes
    # textual-serve starts each viewer through a shell; qbconsole's viewer replaces that with an argv exec
    from textual_serve.app_service import AppService

    from qbconsole.serve import ViewerService

    assert ViewerService._open_app_process is not AppService._open_app_process
    assert "create_subprocess_exec" in ast.unparse(ast.parse(textwrap.dedent(
        inspect.getsource(ViewerService._open_app_process))))


# ---- argv --------------------------------------------------------------------------------------
HOSTILE = [
    "a b", "  spaced  ", "\"double\"", "'single'", "semi; rm -rf /tmp/x", "$(touch PWNED)", "`touch PWNED`",
    "${HOME}", "$HOME", "line\nbreak", "tab\there", "back\\slash", "a && b || c", "x | tee y", "> out", "< in",
    "*", "~", "{n}", "{{n}}", "%s", "é😀", "", "'; echo \"", "a\r\nb",
]


@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v)[:24] for v in HOSTILE])
def test_template_values_cannot_add_or_split_argv_elements(tmp_path, value):
    from qbconsole.actions.executors import execute
    from qbconsole.actions.params import fill_argv

    argv = fill_argv([sys.executable, "-c", PRINT_ARGV, "{v}", "--name={v}", "x{v}y", "{n}"], {"v": value, "n": 7})
    assert argv[3:] == [value, f"--name={value}", f"x{value}y", "7"]  # one element each, never re-expanded
    spec = {"kind": "command", "argv": argv, "timeout_s": 10.0, "env": [], "executable_env": None,
            "cwd": str(tmp_path)}
    outcome = execute(spec, {"PATH": os.environ["PATH"]})
    assert outcome.ok, outcome.output
    assert json.loads(outcome.output) == argv[3:]
    assert list(tmp_path.iterdir()) == []  # nothing was created: no shell ran


@pytest.mark.parametrize("value", ["-rf", "--delete-everything", "-", "-1", "\x00", "a\x00b"])
def test_values_that_could_become_options_or_truncate_are_refused(value):
    from qbconsole.actions.params import ParamError, fill_argv

    with pytest.raises(ParamError):
        fill_argv(["prog", "{v}"], {"v": value})


def test_hostile_label_values_stay_one_element_through_the_engine(tmp_path):
    """Label values rendered by a template parameter, proposed, approved and run."""
    from qbconsole.actions import ActionEngine, approve, get, list_proposals
    from qbconsole.config import parse_config

    config = parse_config(textwrap.dedent(f"""
        optimizations:
          - name: echo
            expr: hits > 0
            action:
              kind: command
              argv: [{sys.executable!r}, -c, {PRINT_ARGV!r}, "{{who}}", "--who={{who}}"]
              params: {{who: "{{{{ $labels.user }}}}"}}
              cwd: {str(tmp_path)!r}
        """), "rules.yaml", env={})
    store = Store.open(tmp_path / "qb.db")
    work = tmp_path / "work"
    try:
        values = [v for v in HOSTILE if v and not v.startswith("-") and v.strip() == v][:12]
        store.write([Sample("hits", {"user": v}, T0, 1.0) for v in values])
        engine = ActionEngine(store, config, env={"PATH": os.environ["PATH"]}, interval_s=0)
        engine.tick(T0)
        proposals = list_proposals(store.read())
        assert len(proposals) == len(values)
        for p in proposals:
            approve(store, p.id, "alice", T0 + 1)
        engine.tick(T0 + 2)
        for p in proposals:
            done = get(store.read(), p.id)
            assert done.state == "succeeded", (done.reason, done.output)
            who = json.loads(done.output)[0]
            assert json.loads(done.output) == [who, f"--who={who}"] and who in values
        assert sorted(json.loads(get(store.read(), p.id).output)[0] for p in proposals) == sorted(values)
        assert not work.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["qb.db", "qb.db-shm", "qb.db-wal"]
    finally:
        store.close()

