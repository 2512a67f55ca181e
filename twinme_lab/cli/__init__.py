"""The ``twinme-lab`` command line: a thin layer over the library.

Each command opens the workspace, calls the library, and prints a short summary, or
one JSON object with ``--json``. Errors become one plain sentence on stderr and an
exit code: 0 success, 1 refused input, 2 misuse, 3 partial failure.
"""

from __future__ import annotations

import sys

import click

from ..errors import EXIT_INTERRUPTED, EXIT_USAGE, TwinMeError
from . import common

# Command modules; each defines register(group).
_MODULES = (
    "core",
    "imports",
    "traits",
    "science",
    "reports",
    "oauth",
    "sandbox",
    "extract",
    "simulate",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="twinme-lab")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="WARNING",
    show_default=True,
    help="Log level for messages on stderr. Secrets are never logged at any level.",
)
def cli(log_level: str) -> None:
    """Twin Me Lab: from platform data to Big Five trait reports."""
    common.configure_logging(log_level)


def _register_all() -> None:
    import importlib

    for name in _MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(cli)


_register_all()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of raising."""
    # State from an earlier call in the same process (tests, notebooks) must not
    # leak into this one's output format or exit code.
    common.reset_state()
    try:
        cli.main(args=argv, prog_name="twinme-lab", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort as exc:
        # click turns Ctrl-C (KeyboardInterrupt) into Abort, as it does a "no" at
        # a confirmation prompt.
        if isinstance(exc.__cause__, KeyboardInterrupt):
            click.echo("Interrupted.", err=True)
            return EXIT_INTERRUPTED
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        code = EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code
        # Option parsing fails before --json is seen, so look for it here.
        if "--json" in (argv if argv is not None else sys.argv[1:]):
            common.print_json_error(exc.format_message(), type(exc).__name__, code)
        exc.show()
        return code
    except TwinMeError as exc:
        common.report_error(exc)
        return exc.exit_code
    return common.pending_exit_code()


if __name__ == "__main__":
    sys.exit(main())
