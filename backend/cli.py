"""The ``baton`` command line (contract: ../shared/DESIGN.md §3).

Each command lives in its own module under :mod:`backend.commands`: ``<command>.py`` for a plain command
(``baton conduct``) or ``<command>_<target>.py`` for a grouped one (``baton bench retarget`` ->
``bench_retarget.py``). A module provides ``configure(parser)`` and ``run(args) -> int``; every command listed
here has one (a test imports them all).

Every command that reports accepts ``--json`` and then prints exactly one JSON object on stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from backend import __version__
from backend.errors import BatonError, NotAvailableError

#: Plain commands: name -> one-line help.
COMMANDS: dict[str, str] = {
    "demo": "music -> conductor -> rigs -> .blend + .mp4 + plot (embedded, no server)",
    "conduct": "generate a conductor's performance from an audio file",
    "generate": "generate a motion from text onto a rig",
    "retarget": "retarget a motion onto another skeleton or rig",
    "search": "search the motion library by text, motion or video",
    "serve": "run the local backend (HTTP on 127.0.0.1)",
}

#: Grouped commands: name -> (help, {target: help}).
GROUPS: dict[str, tuple[str, dict[str, str]]] = {
    "motion": ("inspect motion files", {"info": "skeleton, joints, fps, frames, duration of a motion file"}),
    "library": (
        "the motion library",
        {"import": "import BVH / npz / HumanML3D files", "stats": "clip counts and sizes"},
    ),
    "eval": ("evaluation metrics as JSON", {"conductor": "BC, FGD, diversity, ...", "retrieval": "R@k, MedR",
                                            "video": "video search R@k on rendered clips",
                                            "t2m": "text-to-motion FID, R-precision, content accuracy",
                                            "voice": "voice commands: content accuracy, text / end2end / cascaded"}),
    "bench": (
        "benchmarks as JSON",
        {
            "retarget": "solver and keyframe-writing speed",
            "conduct": "real-time factor per model and runtime",
            "serve": "server overhead and throughput",
            "addon": "add-on end-to-end timing",
            "search": "search latency and ANN recall",
            "voice": "spoken instruction -> motion samples/s, end-to-end vs cascaded",
            "t2m": "text-to-motion latency, torch vs onnxruntime",
            "render": "avatar renderer frames/s and a resumed batch (Ray)",
        },
    ),
    "train": ("train models", {"conductor": "the diffusion conductor", "retrieval": "text/motion retrieval",
                               "speech": "the end-to-end speech condition (memory-retrieval attention)",
                               "t2m": "the text-to-motion generator"}),
    "export": ("export models", {"onnx": "ONNX export of the conductor"}),
    "data": ("build training corpora", {"speech": "spoken-instruction corpus (TTS voices, sox augmentation)",
                                        "render": "rendered avatar clips: text-video-motion dataset"}),
    "models": ("manage model weights", {"import-virtualconductor": "convert an official M2S-GAN checkpoint"}),
}


def _module_name(command: str, target: str | None) -> str:
    name = command if target is None else f"{command}_{target}"
    return "backend.commands." + name.replace("-", "_")


def _load(command: str, target: str | None):
    return importlib.import_module(_module_name(command, target))


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: global options, the command and (for groups) the target.

    Arguments after the command (or target) are not parsed here: :func:`main` hands them to the command's module.
    """
    parser = argparse.ArgumentParser(prog="baton", description="Baton: learned human motion for Blender.")
    parser.add_argument("--version", action="version", version=f"baton {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    for name, (help_text, targets) in GROUPS.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("target", choices=sorted(targets), metavar="{" + ",".join(targets) + "}")
    return parser


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` into what the top-level parser reads (global options, command, target) and the rest."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 1
    if i == len(argv):
        return argv, []
    head = i + 1
    if argv[i] in GROUPS and head < len(argv) and not argv[head].startswith("-"):
        head += 1
    elif argv[i] in GROUPS:
        return argv, []  # no target: argparse prints the group's usage or help
    return argv[:head], argv[head:]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``baton`` console script. Returns the process exit code.

    Exit codes: 0 success, 1 a :class:`BatonError` (bad input; message on stderr), 2 usage errors and
    :class:`NotAvailableError` (a model whose weights are not installed).
    """
    head, rest = _split(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(head)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    target = getattr(args, "target", None)
    prog = f"baton {args.command}" + (f" {target}" if target else "")
    try:
        module = _load(args.command, target)
        sub_parser = argparse.ArgumentParser(prog=prog, description=module.__doc__)
        module.configure(sub_parser)
        sub_args = sub_parser.parse_args(rest)
        return int(module.run(sub_args) or 0)
    except NotAvailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BatonError, ValueError, FileNotFoundError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
