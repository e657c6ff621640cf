"""The ``wae-bench`` command line (click).  Each module of this package adds
its commands (its ``COMMANDS``) to :data:`main`'s group through
:func:`command_modules`; :mod:`~wae_bench.cli.options` derives the flags
from the option declarations.  Nothing here imports torch at start-up
(``wae-bench --help`` takes a fraction of a second): a command imports what
it runs when it runs.

Errors the user can fix (:class:`WaeError`, bad options, a path the system
refuses, out of memory) print one line, ``error: <problem>; <fix>``, and exit
2; a run (or a bench) stopped by SIGINT/SIGTERM prints one line ``stopped by
SIG... ; continue with: ...`` (no ``error:``) and exits 128 + the signal
number after saving, and a Ctrl-C with nothing to save prints ``aborted`` and
exits 130 (:func:`~wae_bench.interrupt.as_error`); an exception raised from
a plugin's own code prints ``error: plugin 'NAME' raised ...; run wae-bench check-plugin NAME``
(:mod:`wae_bench.plugin_fault`) and exits 2; a module of one of wae-bench's
declared requirements that is not installed prints ``error: wae-bench needs
PACKAGE (...); pip install PACKAGE`` (:func:`~wae_bench.requirements.missing_requirement`) and exits
2; any other exception prints one line and exits 1; ``wae-bench --debug ...`` (or ``WAE_BENCH_DEBUG=1``) shows
the traceback instead.

The command modules: :mod:`~wae_bench.cli.run`, :mod:`~wae_bench.cli.eval`,
:mod:`~wae_bench.cli.list`, :mod:`~wae_bench.cli.check_plugin`,
:mod:`~wae_bench.cli.bench`, :mod:`~wae_bench.cli.compare`,
:mod:`~wae_bench.cli.table`, :mod:`~wae_bench.cli.report`,
:mod:`~wae_bench.cli.fid_weights`; :mod:`~wae_bench.cli.options` adds the
``options-table`` command and the flags of ``run``.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import click

from wae_bench import __version__
from wae_bench.errors import WaeError, is_out_of_memory, os_error_text
from wae_bench.launch import is_rank0
from wae_bench.plugin_fault import plugin_fault
from wae_bench.plugin_imports import ENV as PLUGINS_ENV, FLAG as PLUGIN_FLAG, import_plugins
from wae_bench.requirements import missing_requirement


_DEBUG = False


class _Commands(click.Group):
    """The command group; a stop (:class:`~wae_bench.interrupt.Stopped`, or
    a plain ``KeyboardInterrupt``: a Ctrl-C with nothing to save, which click
    would turn into its ``Abort`` after a blank line) leaves a command as the
    error of its one line and exit status (:func:`~wae_bench.interrupt.as_error`).
    A usage error of the command's options that click's parser raises with
    no context (``--reg`` without its value, ``--quiet=1``) gets the
    command's, so that its line names the command's help (:func:`_usage_hint`)."""

    def invoke(self, ctx: click.Context):
        from wae_bench.interrupt import as_error

        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:
            raise as_error(e) from e
        except click.UsageError as e:
            name = ctx.invoked_subcommand   # (set once the command is found, before its options are parsed)
            if e.ctx is None and name in self.commands:
                e.ctx = click.Context(self.commands[name], info_name=name, parent=ctx)
                e.cmd = e.ctx.command
            raise


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="wae-bench")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option(PLUGIN_FLAG, "plugins", multiple=True, metavar="FILE.py|MODULE",
              help=f"Import this plugin, a .py file or a module name (repeatable), before the command runs, as "
                   f"${PLUGINS_ENV} (values separated by {os.pathsep!r}) does: it registers its classes when "
                   f"imported (@REGULARIZERS.register(\"NAME\")). The processes the command starts (bench "
                   f"--devices workers) import them too.")
def cli(debug: bool, plugins: tuple[str, ...]) -> None:
    """Wasserstein-autoencoder latent regularizers, trained alike and compared by FID."""
    global _DEBUG
    _DEBUG = _DEBUG or debug
    imported = import_plugins(plugins, os.environ.get(PLUGINS_ENV))
    if imported:   # inherited by every process the command starts (a worker's own imports are then no-ops here)
        os.environ[PLUGINS_ENV] = os.pathsep.join(imported)


def command_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


for _name in command_modules():
    _mod = importlib.import_module(f"{__name__}.{_name}")
    for _cmd in getattr(_mod, "COMMANDS", []):
        cli.add_command(_cmd)


def _debug() -> bool:
    return _DEBUG or os.environ.get("WAE_BENCH_DEBUG") == "1"


#: How a message says to show the traceback: ``--debug`` is an option of ``wae-bench`` itself, before the command.
DEBUG_HINT = "rerun as `wae-bench --debug COMMAND ...`, or with WAE_BENCH_DEBUG=1, for the traceback"


def _wants_debug(args: list[str]) -> bool:
    """``--debug`` given before the command name (a group option; ``--plugin VALUE`` may come before it)."""
    after_plugin = False
    for a in args:
        if a == "--debug":
            return True
        if not a.startswith("-") and not after_plugin:
            return False
        after_plugin = a == PLUGIN_FLAG
    return False


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _usage_hint(e: click.UsageError) -> str:
    ctx = e.ctx
    return f"see '{ctx.command_path} --help'" if ctx is not None else "see 'wae-bench --help'"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: every failure is one line on stderr and a
    non-zero exit status (2: bad input or state, or a plugin's bug; 1: internal error, 128+N:
    stopped by signal N), unless ``--debug`` / ``WAE_BENCH_DEBUG=1``."""
    global _DEBUG
    args = [*(sys.argv[1:] if argv is None else argv)]  # (`list` is the cli.list module here)
    _DEBUG = _wants_debug(args)
    plugins_env = os.environ.get(PLUGINS_ENV)   # (--plugin sets it for the command's processes: put back after)
    try:
        _main(args, whole_process=argv is None)
    finally:
        if plugins_env is None:
            os.environ.pop(PLUGINS_ENV, None)
        else:
            os.environ[PLUGINS_ENV] = plugins_env


def _main(args: list[str], whole_process: bool) -> None:
    """:func:`main`'s command and its one-line failures (``whole_process``:
    the process ends with it, from ``sys.argv``)."""
    from wae_bench.interrupt import ABORTED, Stopped, exit_status_of_stops, ignore_further_signals, is_stop

    try:
        with exit_status_of_stops():
            cli.main(args=args, prog_name="wae-bench", standalone_mode=False)
        if whole_process:   # the work is done (results.json written): a Ctrl-C while the process exits changes nothing
            ignore_further_signals()
        dist = sys.modules.get("wae_bench.step.distributed")   # loaded only if a command trained or scored
        if dist is not None:
            dist.leave_process_group()                          # (under torchrun: leave cleanly)
    except click.exceptions.Abort:
        click.echo(ABORTED, err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as e:  # `wae-bench` alone: help, not an error
        click.echo(e.ctx.get_help() if e.ctx else str(e))
        sys.exit(0)
    except click.UsageError as e:  # bad option or value: one line, not click's three
        if _debug():
            raise
        if not is_rank0():   # (torchrun: every process parses the same arguments; rank 0 says it)
            sys.exit(e.exit_code)
        if isinstance(e, click.NoSuchOption) and e.option_name in (PLUGIN_FLAG, "--debug"):   # after the command
            click.echo(f"error: {e.option_name} is not an option of {e.ctx.info_name if e.ctx else 'the command'} "
                       f"but of wae-bench, before the command: "
                       f"wae-bench {e.option_name}{' FILE.py' if e.option_name == PLUGIN_FLAG else ''} COMMAND ...",
                       err=True)
            sys.exit(e.exit_code)
        click.echo(f"error: {_one_line(e.format_message()).rstrip('.')}; {_usage_hint(e)}", err=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        if _debug():
            raise
        if not is_rank0():
            sys.exit(e.exit_code)
        click.echo(f"error: {_one_line(e.format_message())}", err=True)
        sys.exit(e.exit_code)
    except (WaeError, Stopped) as e:
        if _debug():
            raise
        if is_stop(e) and whole_process:   # (the process ends here: another Ctrl-C changes nothing)
            ignore_further_signals()
        click.echo(str(e) if is_stop(e) else f"error: {e}", err=True)   # (a stop is deliberate: no "error:")
        sys.exit(e.exit_code)
    except KeyboardInterrupt:   # (outside the command: a command's own is a stop, above)
        if whole_process:
            ignore_further_signals()
        click.echo(ABORTED, err=True)
        sys.exit(130)
    except OSError as e:  # a path the system refuses (too long, not allowed, read-only, full disk, ...)
        if _debug() or not e.filename:
            raise
        click.echo(f"error: {os_error_text(e)}", err=True)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - last resort: one line, no traceback
        if _debug():
            raise
        missing = missing_requirement(e) if isinstance(e, ModuleNotFoundError) else None
        if missing is not None:   # a declared requirement missing from this environment: install it
            click.echo(f"error: {missing}", err=True)
            sys.exit(2)
        if is_out_of_memory(e):
            click.echo(f"error: out of memory ({_one_line(str(e))[:160]}); lower --batch-size, or choose a smaller "
                       f"--arch or latent_dim", err=True)
            sys.exit(2)
        fault = plugin_fault(e)
        if fault is not None:   # a bug in a plugin's own code: the plugin's to fix, not ours to report
            click.echo(f"error: {fault}", err=True)
            sys.exit(2)
        msg = _one_line(str(e))[:300]
        click.echo(f"error: internal error {type(e).__name__}: {msg} ({DEBUG_HINT}, "
                   f"and report it)", err=True)
        sys.exit(1)
