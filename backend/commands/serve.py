"""Run the local backend (HTTP, 127.0.0.1:8765 by default; bearer token from <user config dir>/baton/token).

Settings come from these flags, then ``BATON_*`` environment variables, then ``--config FILE`` (TOML/JSON).
Binding a non-loopback address (LAN GPU box) needs ``--allow-remote``.
"""

from __future__ import annotations

import argparse
import logging

from backend.errors import BatonError

log = logging.getLogger("baton.serve")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 8765)")
    parser.add_argument("--allow-remote", action="store_true", default=None,
                        help="allow a non-loopback --host (anyone who has the token can use the server)")
    parser.add_argument("--config", dest="config_file", help="settings file (TOML or JSON)")
    parser.add_argument("--root", dest="allowed_roots", action="append", metavar="DIR",
                        help="folder whose files jobs may read by server path (repeatable)")
    parser.add_argument("--workers", type=int, help="worker threads for jobs (default 2)")
    parser.add_argument("--device", help="cpu, cuda, cuda:N, mps or auto (default cpu); a GPU this machine does not "
                        "have is an error")
    parser.add_argument("--torch-threads", type=int, help="torch intra-op threads (default: one per core)")
    parser.add_argument("--runtime", choices=("torch", "onnx"),
                        help="inference runtime (default torch); onnx: onnxruntime sessions of the exported graphs")
    parser.add_argument("--library", dest="library_url", help="motion library URL (sqlite:///... or postgresql://...)")
    parser.add_argument("--retrieval-model", help="retrieval model run folder used by library search")
    parser.add_argument("--checkpoint", action="append", metavar="MODEL=PATH", default=None,
                        help="weights for a conductor model, e.g. diffusion=/models/conductor.pt (repeatable)")
    parser.add_argument("--max-upload-mb", type=float, help="largest audio upload in MiB (default 200)")
    parser.add_argument("--max-json-mb", type=float, help="largest JSON body in MiB (default 64)")
    parser.add_argument("--result-ttl", dest="result_ttl_s", type=float, help="seconds results are kept (3600)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def settings_from_args(args: argparse.Namespace):
    """:class:`backend.settings.Settings` from the flags that were given (others fall back to env/file/defaults).

    Raises:
        BatonError: for invalid settings (e.g. a non-loopback host without --allow-remote), with pydantic's reasons.
    """
    from pydantic import ValidationError

    from backend.settings import Settings

    keys = ("host", "port", "allow_remote", "config_file", "allowed_roots", "workers", "device", "runtime",
            "library_url", "retrieval_model", "torch_threads", "max_upload_mb", "max_json_mb",
            "result_ttl_s")  # fmt: skip
    given = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if args.checkpoint:
        pairs = [item.partition("=") for item in args.checkpoint]
        bad = [item for item, (name, _, path) in zip(args.checkpoint, pairs, strict=True) if not (name and path)]
        if bad:
            raise BatonError(f"--checkpoint wants MODEL=PATH, got {bad}")
        given["checkpoints"] = {name: path for name, _, path in pairs}
    try:
        return Settings(**given)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise BatonError(f"invalid server settings: {reasons}") from None


def run(args: argparse.Namespace) -> int:
    import sys

    import uvicorn

    from backend.app import create_app
    from backend.auth import token_path

    settings = settings_from_args(args)
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000.0)  # this process serves; see the setting's help
    if settings.torch_threads is not None:
        import torch

        torch.set_num_threads(settings.torch_threads)
    app = create_app(settings)  # raises BatonError for a device or runtime this machine cannot run
    where = "settings.token" if settings.token else str(token_path(settings))
    log.info("Baton backend on http://%s:%d (token: %s; device %s, runtime %s)", settings.host, settings.port, where,
             app.state.models.device, settings.runtime)  # fmt: skip
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m backend.commands.serve [FLAGS]``: the same as ``baton serve`` (exit 1 on invalid settings)."""
    import sys

    parser = argparse.ArgumentParser(prog="baton serve", description=__doc__)
    configure(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return run(args)
    except (BatonError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
