"""The `rosetta` command: a thin Typer layer over the library.

`main()` is the one place that turns library errors into messages and exit codes:
  0 success · 1 failure · 2 bad usage or input · 3 finished but some rows failed · 130 interrupted
Heavy libraries (torch, faiss, diffusers, sentence-transformers) are imported inside
commands, so `rosetta --help` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback

import typer

from rosetta_cli import __version__
from rosetta_cli.cli.core import RosettaGroup, RosettaTyper

# One module per subcommand (or group); each exposes `register(app)`.
COMMAND_MODULES = (
    "toy", "prep", "extract", "encoders", "rst", "mine", "pretrain", "bench", "demo", "claims", "workspace", "store", "search",
)

app = RosettaTyper(
    name="rosetta",
    cls=RosettaGroup,
    help="Ego-exo view-invariant video representations (Viewpoint Rosetta Stone, CVPR 2025).\n\n"
    "Pipeline: extract → train-rst → translate → mine → pretrain → bench.  Try: rosetta demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        typer.echo(f"rosetta {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    workspace: str = typer.Option(None, "--workspace", envvar="ROSETTA_WORKSPACE",
                                  help="Workspace directory holding rosetta.toml (default: the current one)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show debug messages (the resolved command, timings)."),
    log_file: str = typer.Option(None, "--log-file", metavar="FILE",
                                 help="Append every message, debug included, with timestamps to FILE."),
):
    """Global options. --debug is read by main(); --workspace by RosettaGroup (the session's root);
    --verbose and --log-file route the `rosetta` logger."""
    from rosetta_cli.cli.common import setup_logging

    setup_logging(verbose, log_file)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        modname = f"rosetta_cli.cli.{name}"
        if importlib.util.find_spec(modname) is not None:
            importlib.import_module(modname).register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Console entry point. Exits with the documented codes."""
    from rosetta_cli.errors import RosettaError, cannot_write

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        # standalone_mode=False: typer *returns* the code of an Exit (its KeyboardInterrupt becomes
        # Exit(130)) instead of exiting, so a returned int is an exit code, never to be dropped
        code = app(args=argv, standalone_mode=False, prog_name="rosetta")
    except RosettaError as e:
        _fail(e, debug, e.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except (PermissionError, OSError) as e:
        if not _is_write_error(e):
            _fail(e, debug, 1, prefix=f"unexpected {type(e).__name__}: ")
        _fail(cannot_write(e), debug, 2)
    except SystemExit:
        raise
    except Exception as e:
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):  # click's (typer's vendored click's) usage errors
            _usage_error(e)
        if type(e).__name__ == "Abort":  # click's Ctrl-C at a prompt
            _interrupted()
        _fail(e, debug, 1, prefix=f"unexpected {type(e).__name__}: ")
    if code == 130:
        _interrupted()
    sys.exit(code if type(code) is int else 0)


def _is_write_error(e: OSError) -> bool:
    """Permission denied, or a read-only file system: the user's --out, not a bug."""
    import errno

    return isinstance(e, PermissionError) or e.errno in (errno.EROFS, errno.EACCES, errno.EPERM)


def _usage_error(e) -> None:
    """One line, like every other error: the problem, then where the options are explained."""
    ctx = getattr(e, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    sys.stderr.write(f"rosetta: error: {e.format_message()}{where}\n")
    sys.exit(e.exit_code)


def _log_only(msg: str) -> None:
    """The error line in --log-file too (stderr has it already)."""
    import logging

    logging.getLogger("rosetta").error(msg, extra={"console": False})


def _interrupted() -> None:
    sys.stderr.write("rosetta: error: interrupted (rerun the same command to resume)\n")
    _log_only("error: interrupted")
    sys.exit(130)


def _fail(e: BaseException, debug: bool, code: int, prefix: str = "") -> None:
    if debug:
        traceback.print_exc()
    msg = e.one_line() if hasattr(e, "one_line") else str(e)
    sys.stderr.write(f"rosetta: error: {prefix}{msg}\n")
    _log_only(f"error: {prefix}{msg}")
    if not debug and code == 1 and not prefix == "":
        sys.stderr.write("rosetta: rerun with --debug for the traceback\n")
    sys.exit(code)
