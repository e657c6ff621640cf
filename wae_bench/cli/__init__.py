"""The ``wae-bench`` command line (click).  Each module of this package adds
its commands to :data:`main`'s group through :func:`command_modules`.

Errors the user can fix (:class:`WaeError`) print one line and exit 2; any
other exception prints one line and exits 1; ``--debug`` (or
``WAE_BENCH_DEBUG=1``) shows the traceback instead.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import click

from wae_bench import __version__
from wae_bench.errors import WaeError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="wae-bench")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """Wasserstein-autoencoder latent regularizers, trained alike and compared by FID."""
    if debug:
        os.environ["WAE_BENCH_DEBUG"] = "1"


def command_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


for _name in command_modules():
    _mod = importlib.import_module(f"{__name__}.{_name}")
    for _cmd in getattr(_mod, "COMMANDS", []):
        cli.add_command(_cmd)


def _debug() -> bool:
    return os.environ.get("WAE_BENCH_DEBUG") == "1" or "--debug" in sys.argv[1:2]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="wae-bench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except WaeError as e:
        if _debug():
            raise
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - last resort: one line, no traceback
        if _debug():
            raise
        msg = str(e).splitlines()[0] if str(e) else ""
        click.echo(f"error: internal error {type(e).__name__}: {msg} (rerun with --debug for the traceback "
                   f"and report it)", err=True)
        sys.exit(1)
