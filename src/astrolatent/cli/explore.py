"""CLI command ``explore``: serve the interactive latent explorer of a run."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Annotated

import typer

from astrolatent import api
from astrolatent.cli.common import configured, console
from astrolatent.errors import ConfigError


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a clear error when it cannot be had."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: must be between 0 and 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host!r}: cannot be resolved ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    # proto must be TCP (not 0) for asyncio to set TCP_NODELAY on the connections
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
        ) from None
    sock.listen(128)
    return sock


def served_hosts(host: str) -> list[str]:
    """The ``Host`` header names the explorer answers when listening on ``host``: that
    address, and for loopback also ``localhost``/``127.0.0.1``; ``*`` for 0.0.0.0 or ::
    (every address of the machine, whose names are not known)."""
    if host in ("0.0.0.0", "::"):
        return ["*"]
    names = {host.strip("[]")}
    if _is_loopback(host):
        names |= {"localhost", "127.0.0.1", "::1"}
    return sorted(names)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@configured(api.explore_config, exclude=("run",))
def explore(
    run: Annotated[Path, typer.Argument(help="Run directory (trained and encoded).")],
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to listen on (default 127.0.0.1); anything but loopback is "
            "reachable by others."
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (0: any free port; default 8765).")
    ] = None,
    *,
    cfg,
) -> None:
    """Serve the interactive latent explorer of RUN in the browser.

    Needs RUN/model.pt and RUN/latents.parquet (`astrolatent encode RUN`).

    Uses RUN/analysis/summary.json (`astrolatent analyze RUN`), when present, for the
    informative latents and each label's best latent. Stop with Ctrl-C.
    """
    host, port = cfg.host, cfg.port
    import torch

    from astrolatent.errors import require

    require("uvicorn", "explorer", "the explorer")
    import uvicorn

    from astrolatent.explorer import ExplorerData, create_app

    if not run.is_dir():
        raise ConfigError(f"{run}: no such run directory")
    data = ExplorerData(run)
    sock = listen_socket(host, port)
    torch.set_num_threads(1)
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    console.print(
        f"explorer of {run} at [bold]http://{shown}:{bound_port}/[/] (Ctrl-C to stop)",
        highlight=False,
    )
    if not _is_loopback(host):
        console.print(
            f"[yellow]warning:[/] listening on {host}: anyone who can reach this machine can "
            "read the run's spectra (the explorer has no login)",
            highlight=False,
        )
    config = uvicorn.Config(
        create_app(data, hosts=served_hosts(host)),
        log_level="warning",
        ws="none",
        lifespan="off",
        access_log=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


def register(app: typer.Typer) -> None:
    """Add this module's commands to the application."""
    app.command("explore")(explore)
