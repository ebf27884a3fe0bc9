"""The command line as a package: one module per command listed in one
registry, no module over about 400 lines, a missing command module said in
one line, and JAX's persistent compilation cache for the commands."""

from pathlib import Path

import pytest
from test_cli import assert_user_error, run

CLI = Path(__file__).resolve().parents[1] / "src" / "rflo" / "cli"


def test_every_command_is_one_registry_line_and_no_module_is_long():
    from rflo.cli import build_parser
    from rflo.cli.registry import COMMANDS

    sub = build_parser()._subparsers._group_actions[0].choices
    assert list(sub) == list(COMMANDS)
    for name in ("train", "compare", "eval", "plot", "completion"):
        assert COMMANDS[name].module.startswith("rflo.cli.")
    longest = max((len(p.read_text().splitlines()), p.name) for p in CLI.glob("*.py"))
    assert longest[0] <= 400, longest


def test_a_command_whose_module_is_missing_says_so_in_one_line(monkeypatch):
    from rflo.cli import registry

    monkeypatch.setitem(
        registry.COMMANDS,
        "nothere",
        registry.Command("rflo.paper.not_a_module", "a command to come"),
    )
    proc = run("nothere", "--any", "thing")
    assert_user_error(
        proc, "rflo nothere: error: this installation cannot run it", "rflo.paper.not_a_module"
    )
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "nothere" in run("--help").stdout  # listed all the same


def test_the_compilation_cache_is_on_unless_turned_off(tmp_path, monkeypatch):
    import jax

    from rflo.cli import cache

    before = jax.config.jax_compilation_cache_dir
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    try:
        jax.config.update("jax_compilation_cache_dir", None)
        assert cache.enable(off=True) is None and jax.config.jax_compilation_cache_dir is None
        monkeypatch.setenv(cache.ENV_OFF, "1")
        assert cache.enable() is None and jax.config.jax_compilation_cache_dir is None
        monkeypatch.setenv(cache.ENV_OFF, "0")
        assert cache.enable() == tmp_path / "rflo" / "jax"
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "rflo" / "jax")
        assert (tmp_path / "rflo" / "jax").is_dir()
        jax.config.update("jax_compilation_cache_dir", "/somewhere/else")
        assert cache.enable() is None  # a folder set already (the tests', the user's) stays
        assert jax.config.jax_compilation_cache_dir == "/somewhere/else"
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
    # the flag, before the command or after a command that computes
    assert run("--no-compile-cache", "task", "list").returncode == 0
    assert_user_error(run("completion", "bash", "--no-compile-cache"), "unrecognized arguments")
    from rflo.cli import build_parser

    args = build_parser({"eval"}).parse_args(["eval", "x.npz", "--no-compile-cache"])
    assert args.no_compile_cache is True


@pytest.mark.parametrize("name", ["Segments", "MAX_SEGMENT", "UserError", "EXTERNAL", "main"])
def test_names_the_command_line_exported_are_still_there(name):
    import rflo.cli

    assert hasattr(rflo.cli, name)


def test_a_figure_command_runs_its_own_main_not_its_experiment():
    """A figure module's ``run`` is its experiment, not a command: the command
    line hands the arguments to its ``main`` (``--spec`` prints the figure's
    sweep without training)."""
    proc = run("figure2", "--spec", "--quick", "--init", "notebook")
    assert proc.returncode == 0, proc.stderr
    assert 'name = "figure2-quick"' in proc.stdout
