"""The ``sandbox`` command: serve the local OAuth provider until Ctrl-C."""

from __future__ import annotations

import signal
import threading

import click

from ..errors import UsageError
from .common import emit, json_option, plural


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8443,
    show_default=True,
    help="TCP port on 127.0.0.1; 0 picks a free port.",
)
@click.option(
    "--auto-consent",
    is_flag=True,
    help="Redirect from the authorize URL at once instead of showing a consent page.",
)
@click.option(
    "--deliver-callback/--no-deliver-callback",
    default=True,
    show_default=True,
    help="With --auto-consent, request the loopback redirect URI from the sandbox "
    "itself, so a browser command that does not follow redirects (curl without "
    "-L) completes the flow.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the generated data; the same seed serves the same data.",
)
@click.option(
    "--users",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    help="Sandbox users per platform.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the generated CA, certificate and key. Default: a temporary "
    "folder, deleted on exit.",
)
@click.option(
    "--token-lifetime",
    type=click.FloatRange(1, None),
    default=3600.0,
    show_default=True,
    help="Access-token lifetime in seconds.",
)
@click.option(
    "--no-rate-limits",
    is_flag=True,
    help="Do not apply the platforms' rate limits.",
)
@json_option
def sandbox(
    port: int,
    auto_consent: bool,
    deliver_callback: bool,
    seed: int,
    users: int,
    state_dir: str | None,
    token_lifetime: float,
    no_rate_limits: bool,
) -> None:
    """Serve a local OAuth provider and API for all seven platforms.

    It listens on 127.0.0.1 only, over HTTPS with a certificate generated at
    start. Client credentials are sandbox-<platform>-client /
    sandbox-<platform>-secret. Choose the consenting user with
    sandbox_user=<index or login> on the authorize URL (default: user 0).
    Faults, rate limits and counters: /_sandbox/faults, /_sandbox/rate-limits,
    /_sandbox/stats.

    Example, with connect completing on its own in another shell:

        twinme-lab sandbox --auto-consent --port 8443

        BROWSER='curl -sk -o /dev/null %s &' twinme-lab connect github
        --participant P001
    """
    from ..sandbox import SandboxError, serve

    try:
        handle = serve(
            port=port,
            auto_consent=auto_consent,
            deliver_callback=deliver_callback,
            seed=seed,
            users=users,
            state_dir=state_dir,
            token_lifetime=token_lifetime,
            rate_limits=not no_rate_limits,
        )
    except SandboxError as exc:
        raise UsageError(str(exc)) from exc

    # The handlers are in place before the message that the sandbox is ready, so
    # a signal sent as soon as it appears stops the sandbox cleanly.
    stopped = threading.Event()
    # SIGINT gets a handler of its own because a process started in the
    # background of a shell script inherits SIGINT ignored, and Ctrl-C or kill
    # -INT would then not stop it.
    signal_numbers = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):
        # POSIX sends SIGHUP when the terminal the sandbox runs in is closed.
        signal_numbers.append(signal.SIGHUP)
    previous = {
        number: signal.signal(number, lambda *_: stopped.set())
        for number in signal_numbers
    }
    try:
        _print_ready(handle, auto_consent, seed, users)
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        handle.stop()
        click.echo("Sandbox stopped.", err=True)


def _print_ready(handle, auto_consent: bool, seed: int, users: int) -> None:
    variables = {**handle.env(), "REQUESTS_CA_BUNDLE": handle.ca_path}
    exports = "\n".join(f"export {name}={value}" for name, value in variables.items())
    emit(
        {
            "url": handle.url,
            "ca_path": handle.ca_path,
            "env": variables,
            "auto_consent": auto_consent,
            "seed": seed,
            "users": users,
        },
        f"Sandbox serving on {handle.url} (seed {seed}, {plural(users, 'user')} "
        f"per platform{', auto-consent' if auto_consent else ''}).\n"
        f"CA certificate: {handle.ca_path}\n"
        "Point twinme-lab at it in another shell:\n"
        f"{exports}\n"
        "REQUESTS_CA_BUNDLE is only needed by other HTTPS clients; it replaces "
        "the default trust store for that shell.\n"
        "Press Ctrl-C to stop.",
    )


def register(group: click.Group) -> None:
    group.add_command(sandbox)
