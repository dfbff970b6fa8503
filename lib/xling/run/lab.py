"""JupyterLab at the repository root with the ``xling`` kernel (behind ``./run_all.sh --lab``).

The notebooks open where ``run_all.sh`` runs them (the repository root), new notebooks get the
``Python (xling)`` kernel, and the URL with its token is printed before the server starts. The
browser test starts the server through the same :func:`lab_command` on a free port.

    python -m xling.run.lab [--port N] [--no-browser] [jupyter lab options ...]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

from xling import paths

KERNEL = "xling"
DEFAULT_PORT = 8888


def lab_url(port: int, token: str, path: str = "lab", host: str = "127.0.0.1") -> str:
    """The address to open: ``path`` under the server, the token in the query."""
    return f"http://{host}:{port}/{path.lstrip('/')}?token={token}"


def lab_command(
    port: int, token: str, open_browser: bool = True, extra: list[str] | tuple[str, ...] = ()
) -> list[str]:
    """The ``jupyter lab`` command: this Python's JupyterLab, serving the repository root on
    localhost ``port`` (no other port tried) with ``token``, the xling kernel the default."""
    return [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={paths.ROOT}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.open_browser={open_browser}",
        f"--MappingKernelManager.default_kernel_name={KERNEL}",
        # the kernels' channels encrypted (CurveZMQ keys from the kernel manager), as in
        # run_all.sh's runs, where pyzmq has CurveZMQ
        *(["--KernelManager.transport_encryption=auto"] if _curve() else []),
        # as root (a container, CI) JupyterLab refuses to start unless told; it still listens
        # on localhost only, behind the token
        *(["--ServerApp.allow_root=True"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        *extra,
    ]


def _curve() -> bool:
    try:
        import zmq
    except ImportError:  # pragma: no cover - pyzmq comes with jupyter
        return False
    return bool(zmq.has("curve"))


def lab_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The server's (and so its kernels') environment: run_all.sh's, less its ``MPLBACKEND=Agg``
    (papermill needs no display; in JupyterLab the kernel's inline backend shows plots)."""
    env = dict(os.environ if environ is None else environ)
    env.pop("MPLBACKEND", None)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="run_all.sh --lab",
        description="Start JupyterLab at the repository root with the xling kernel.",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"localhost port (default {DEFAULT_PORT})"
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    args, extra = parser.parse_known_args(argv)
    port = args.port
    token = secrets.token_hex(24)
    cmd = lab_command(port, token, open_browser=not args.no_browser, extra=extra)
    print(f"[xling] JupyterLab at {paths.ROOT} with the xling kernel; open:", flush=True)
    print(f"[xling]   {lab_url(port, token, 'lab/tree/notebooks')}", flush=True)
    print(f"[xling] (port {port} taken? --port N); Ctrl-C twice stops it.", flush=True)
    os.execve(cmd[0], cmd, lab_environment())
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main())
