"""Every shell command of the README and of `docs/` is checked, so a renamed flag, file or knob breaks a test.

The Python blocks run (`test_readme.py`, `test_export_docs.py`, `test_architecture_docs.py`); a shell
block trains for minutes to days, so its commands are checked the way `python -m mmjax config` checks
one, without training:

- `python -m mmjax COMMAND ...`: the command exists and takes every flag given; an experiment config
  (`--config FILE[:variant]` and its `--config.a.b=v` overrides) resolves and passes the checks of
  `train`; a run it reads (`--from`, a tokenizer or teacher workdir) is one an earlier command of the
  page trains; a command documented with its `# error:` line fails with that error.
- `python benchmarks/X.py --flag ...`: the script exists and declares each flag.
- `tpu_scripts/X.sh`, `sbatch ... tpu_scripts/X`: the script exists and parses (`bash -n`).
- the setup line: the extras it installs exist in `pyproject.toml`; the test command is the one
  `.ci/run` runs.

An unknown kind of command fails the test, so a new block gets a check before it lands.
"""

from __future__ import annotations

import functools
import pathlib
import re
import shlex
import subprocess

import pytest
from absl import flags
from ml_collections import config_flags

from mmjax import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
pytestmark = pytest.mark.promise


def shell_commands(page: pathlib.Path) -> list[tuple[list[str], str | None]]:
    """Each command of the page's bash blocks as tokens (continuations joined, `&&` split, comments
    dropped), with the `# error: ...` text of the line that follows it, if any."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
        lines = block.replace("\\\n", " ").splitlines()
        for i, line in enumerate(lines):
            following = lines[i + 1].strip() if i + 1 < len(lines) else ""
            error = following.removeprefix("# error:").strip() if following.startswith("# error:") else None
            if not shlex.split(line, comments=True):
                continue
            for part in re.split(r"\s&&\s", line):
                tokens = shlex.split(part, comments=True)
                while tokens and re.fullmatch(r"[A-Z_]+=\S*", tokens[0]):  # VAR=value prefixes
                    tokens = tokens[1:]
                if tokens:
                    commands.append((tokens, error))
    return commands


CASES = [(page, tokens, error) for page in PAGES for tokens, error in shell_commands(page)]


def flag_pairs(tokens: list[str]) -> list[tuple[str, str | None]]:
    """`--name=value`, `--name value` and `--name` of a command line, in order."""
    pairs, i = [], 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            if not eq and i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                value, i = tokens[i + 1], i + 1
            pairs.append((name, value if (eq or value) else None))
        i += 1
    return pairs


def trained_workdirs(page: pathlib.Path) -> set[str]:
    """The `--workdir` of every `mmjax train` / `finetune` command of the page."""
    return {
        value
        for tokens, _ in shell_commands(page)
        if tokens[:4] in (["python", "-m", "mmjax", "train"], ["python", "-m", "mmjax", "finetune"])
        for name, value in flag_pairs(tokens)
        if name == "workdir"
    }


@functools.cache
def checked_config(spec: str, overrides: tuple[str, ...]) -> None:
    """Resolve `--config spec` with `overrides` in-process and run the checks of `train`."""
    from mmjax.evaluate.protocols import check_protocols
    from mmjax.train.validate import check_config

    argv = ["mmjax", f"--config={spec}", *overrides]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True, sys_argv=argv)
    values(argv)
    check_config(values.config)
    check_protocols(values.config.eval.protocols)


def check_mmjax(page: pathlib.Path, tokens: list[str], error: str | None) -> None:
    command = tokens[3]
    assert command in cli.COMMANDS, f"{page.name}: {shlex.join(tokens)}: no command {command!r}"
    pairs = flag_pairs(tokens[4:])
    allowed = {*cli.COMMANDS[command].flags, "verbose"}
    for name, _ in pairs:
        ok = name in allowed or (name.startswith("config.") and "config" in allowed)
        assert ok, f"{page.name}: {shlex.join(tokens)}: {command} takes no --{name}"
    values = dict(pairs)
    upstream = {values.get("from"), *(v for n, v in pairs if n.endswith(("_workdir", "tokenizer")))} - {None}
    spec = values.get("config")
    if spec and ":tokenizer=" in spec:
        upstream.add(spec.split(":tokenizer=")[1].split(",")[0])
    if command in ("eval", "export", "sample"):
        upstream.add(values["workdir"])
    unknown = upstream - trained_workdirs(page)
    assert not unknown, f"{page.name}: {shlex.join(tokens)} reads {sorted(unknown)}, which no command there trains"
    if spec is None:
        return
    overrides = tuple(f"--{n}={v}" for n, v in pairs if n.startswith("config."))
    if error is not None:
        from mmjax.__main__ import _missing_field

        found = _missing_field(["mmjax", f"--config={spec}", *overrides])
        assert found is not None and found.startswith(error.split(";")[0]), f"{page.name}: {found!r} vs {error!r}"
        return
    if command == "finetune":
        overrides += (f"--config.finetune.from_workdir={values['from']}",)
    # A run it reads is made by an earlier command of the page; `/path/to/...` stands for the user's file.
    expected = {*upstream, *re.findall(r"/path/to/[^\s,]+", spec)}
    try:
        checked_config(spec, overrides)
    except OSError as err:
        assert any(path in str(err) for path in expected), f"{page.name}: {shlex.join(tokens)}: {err}"


def check_other(page: pathlib.Path, tokens: list[str]) -> None:
    line = shlex.join(tokens)
    if tokens[:3] == ["python3", "-m", "venv"] or tokens[0] in (".", "export"):
        return
    if tokens[:2] == ["pip", "install"]:
        extras = re.findall(r"\.\[([\w,]+)\]", line)
        table = (ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1].split("\n[")[0]
        declared = re.findall(r"^([\w-]+) = \[", table, re.M)
        assert extras and set(",".join(extras).split(",")) <= set(declared), f"{page.name}: {line}"
        return
    if tokens[:3] == ["python", "-m", "pytest"]:
        block = re.search(r"<!-- test-command -->\n```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
        assert line in shlex.join(shlex.split(block.group(1))), f"{page.name}: {line} is not the README's test command"
        return
    if tokens[0] == "python" and tokens[1].startswith("benchmarks/"):
        script = ROOT / tokens[1]
        assert script.is_file(), f"{page.name}: {line}: no {tokens[1]}"
        for name, _ in flag_pairs(tokens[2:]):
            assert f'"--{name}"' in script.read_text() or f'"{name}"' in script.read_text(), f"{page.name}: {line}"
        return
    script = next((t for t in tokens if t.startswith("tpu_scripts/")), None)
    if script is not None and tokens[0] in (script, "sbatch"):
        assert (ROOT / script).is_file(), f"{page.name}: {line}: no {script}"
        subprocess.run(["bash", "-n", str(ROOT / script)], check=True)
        return
    pytest.fail(f"{page.name}: no check for the shell command {line!r}; add one to {pathlib.Path(__file__).name}")


@pytest.mark.parametrize("page, tokens, error", CASES, ids=[f"{p.name}:{' '.join(t[:4])[:40]}" for p, t, _ in CASES])
def test_shell_command(page, tokens, error):
    if tokens[:3] == ["python", "-m", "mmjax"]:
        check_mmjax(page, tokens, error)
    else:
        check_other(page, tokens)


def test_every_page_with_shell_blocks_is_read():
    assert len(CASES) >= 40 and {p.name for p, _, _ in CASES} >= {"README.md", "training.md", "pods.md"}
