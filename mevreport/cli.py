"""Command line: ``mevreport demo | report | diff | index`` (DESIGN §2).

Exit codes: 0 done, 1 a ``--fail-if`` gate failed, 2 bad usage or input.
Errors the user can fix are one line on stderr, with a traceback only under
``--debug``; output paths are checked before any work and written
atomically, so a failed run leaves no file behind.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from ._version import __version__
from .errors import MevreportError, UsageError

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _progress(quiet: bool):
    start = time.perf_counter()

    def say(message: str) -> None:
        if not quiet:
            print(f"mevreport: {message} ({time.perf_counter() - start:.1f}s)", file=sys.stderr, flush=True)

    return say


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mevreport", description="One self-contained HTML report of what a PyTorch model executes.")
    parser.add_argument("--version", action="version", version=f"mevreport {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--debug", action="store_true", help="show tracebacks")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")

    demo = sub.add_parser("demo", help="report the bundled example model")
    demo.add_argument("-o", "--output", default="mevreport-demo.html", help="HTML path (default: %(default)s)")
    demo.add_argument("--json", dest="json_path", help="also write the JSON document here")
    common(demo)

    rep = sub.add_parser("report", help="report a model")
    rep.add_argument("model", metavar="MODEL", help="pkg.module:callable, path/to/file.py:callable, model.onnx or archive.pt2")
    rep.add_argument("--input-shape", action="append", default=[], metavar="SHAPE",
                     help="shape of a random input, like 1,3,224,224; repeat per positional input")
    rep.add_argument("--input-dtype", default="float32", help="dtype of random inputs (default: %(default)s)")
    rep.add_argument("--device", default=None, help="cpu, cuda, cuda:N or meta (default: where the model is)")
    rep.add_argument("--capture", default="auto", choices=["auto", "dispatch", "export"])
    rep.add_argument("--no-stats", action="store_true", help="skip activation and weight statistics")
    rep.add_argument("--runs", type=int, default=3, help="timed runs for latency (0: no timing; default: %(default)s)")
    rep.add_argument("--onnx", dest="onnx_path", help="also export the model to this ONNX file")
    rep.add_argument("-o", "--output", default=None, help="HTML path (default: <model name>.html)")
    rep.add_argument("--json", dest="json_path", help="also write the JSON document here")
    rep.add_argument("--title", help="report title")
    rep.add_argument("--label", help="release label, e.g. v1.2.0 (used by 'mevreport index')")
    common(rep)
    return parser


def _write(report, html_path: str, json_path: str | None, say) -> None:  # noqa: ANN001
    out = report.save_html(html_path)
    say(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    if json_path:
        say(f"wrote {report.save_json(json_path)}")


def _check_outputs(*paths: str | None) -> None:
    from .fileio import check_writable
    for p in paths:
        if p:
            check_writable(p)


def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo
    from .api import analyze
    _check_outputs(args.output, args.json_path)
    say = _progress(args.quiet)
    model, inputs = demo.build()
    report = analyze(model, inputs, title="mevreport demo: DemoResNet", name="DemoResNet", progress=say)
    _write(report, args.output, args.json_path, say)
    return EXIT_OK


def _load_for_device(load_model, spec: str, device: str | None):  # noqa: ANN001, ANN202
    """With ``--device meta`` the model is built on the meta device, so a model
    bigger than the machine is never materialised; a model whose constructor
    needs real data is built normally and then analysed with fake tensors."""
    if device != "meta":
        return load_model(spec)
    import torch
    try:
        with torch.device("meta"):
            return load_model(spec)
    except MevreportError as exc:
        if exc.__cause__ is None:  # a bad spec, not a constructor that needs data
            raise
    except Exception:  # noqa: BLE001  (e.g. an import-time computation that needs data)
        pass
    return load_model(spec)


def cmd_report(args: argparse.Namespace) -> int:
    from .api import analyze
    from .loader import load_model, parse_dtype, parse_shape, random_inputs
    shapes = [parse_shape(s) for s in args.input_shape]
    dtype = parse_dtype(args.input_dtype)
    if args.runs < 0:
        raise UsageError("--runs must be 0 or more")
    say = _progress(args.quiet)
    loaded = _load_for_device(load_model, args.model, args.device)
    output = args.output or f"{loaded.name}.html"
    _check_outputs(output, args.json_path)
    inputs = random_inputs(shapes, dtype) if shapes else loaded.inputs
    if inputs is None:
        raise UsageError(f"{args.model!r} gives no example inputs: pass --input-shape (e.g. --input-shape 1,3,224,224)")
    say(f"loaded {type(loaded.module).__name__}")
    report = analyze(loaded.module, inputs, device=args.device, capture=args.capture, stats=not args.no_stats,
                     title=args.title, runs=args.runs, label=args.label, name=loaded.name, progress=say)
    _write(report, output, args.json_path, say)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help(sys.stderr)
            return EXIT_USAGE
        handler = {"demo": cmd_demo, "report": cmd_report}[args.command]
        return handler(args)
    except MevreportError as exc:
        if debug:
            raise
        print(f"mevreport: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mevreport: interrupted; no file was written", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry() -> None:  # pragma: no cover - console script wrapper
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
