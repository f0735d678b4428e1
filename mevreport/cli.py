"""Command line: ``mevreport demo | report | diff | index`` (DESIGN §2).

Exit codes: 0 done, 1 a ``--fail-if`` gate failed, 2 bad usage or input.
Errors the user can fix are one line on stderr, with a traceback only under
``--debug``; output paths are checked before any work and written
atomically, so a failed run leaves no file behind.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from ._version import __version__
from .errors import NO_CUDA_HINT, MevreportError, ModelRunError, UsageError

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def emit(line: str) -> None:
    """The one place the CLI writes a message line to stderr, control characters escaped."""
    from .terminal import terminal_safe
    print(terminal_safe(line), file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _progress(quiet: bool):
    start = time.perf_counter()

    def say(message: str) -> None:
        """Progress lines, unless quiet; warnings (``"warning: ..."``) always."""
        if not quiet or message.startswith("warning:"):
            emit(f"mevreport: {message} ({time.perf_counter() - start:.1f}s)")

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
                     help="shape of a random input, like 1,3,224,224; repeat per positional input "
                          "(ONNX models: also NAME=1,3,224,224 per graph input)")
    rep.add_argument("--input-dtype", default="float32", metavar="DTYPE",
                     help="dtype of random inputs: float32, float64, float16, bfloat16, int64, int32, int8, uint8 "
                          "or bool; integers are drawn from [0, 100) (default: %(default)s)")
    rep.add_argument("--device", default=None, help="cpu, cuda, cuda:N or meta (default: where the model is)")
    rep.add_argument("--capture", default="auto", choices=["auto", "dispatch", "export"],
                     help="how the executed graph is recorded: dispatch runs the model eagerly under a "
                          "TorchDispatchMode; export traces it with torch.export; auto is dispatch for "
                          "modules and export for .pt2 archives (default: %(default)s)")
    rep.add_argument("--no-stats", action="store_true", help="skip activation and weight statistics")
    rep.add_argument("--runs", type=int, default=3, help="timed runs for latency (0: no timing; default: %(default)s)")
    rep.add_argument("--onnx", dest="onnx_path", help="also export the model to this ONNX file")
    rep.add_argument("-o", "--output", default=None,
                     help="HTML path; missing directories are created (default: <model class>.html, "
                          "or <file stem>.html for .onnx/.pt2)")
    rep.add_argument("--json", dest="json_path", help="also write the JSON document here")
    rep.add_argument("--trace", dest="trace_path", metavar="PATH",
                     help="also write the measured op timeline as Chrome trace JSON (Perfetto, chrome://tracing)")
    rep.add_argument("--csv", dest="csv_dir", metavar="DIR", help="also write ops.csv and modules.csv into DIR")
    rep.add_argument("--world-size", type=int, default=None, metavar="N",
                     help="simulate N ranks (with --device meta and --shard): each rank's shards and traffic")
    rep.add_argument("--shard", choices=["fsdp", "tp", "fsdp+tp"], default=None,
                     help="how the simulated ranks shard the model (default with --world-size: fsdp)")
    rep.add_argument("--tp-size", type=int, default=None, metavar="K",
                     help="ranks per tensor-parallel group for --shard fsdp+tp (default: 8, or N when smaller)")
    rep.add_argument("--title", help="report title")
    rep.add_argument("--label", help="release label, e.g. v1.2.0 (used by 'mevreport index')")
    rep.add_argument("--train", action="store_true",
                     help="capture one training step: forward, loss, backward, optimizer step (docs/training.md)")
    rep.add_argument("--loss", metavar="FN", help="with --train: pkg.module:fn or file.py:fn, called as fn(outputs, "
                                                  "inputs) -> scalar (default: the output's .loss, else synthetic)")
    rep.add_argument("--optimizer", metavar="OPT", help="with --train: sgd, adam, adamw (default) or pkg.module:fn, "
                                                        "a factory fn(params) -> optimizer")
    common(rep)

    dif = sub.add_parser("diff", help="compare two reports (JSON or HTML); gate CI on the change")
    dif.add_argument("base", metavar="BASE", help="the report before the change (.json or .html)")
    dif.add_argument("head", metavar="HEAD", help="the report after the change (.json or .html)")
    dif.add_argument("-o", "--output", default=None, help="write the HTML diff page here")
    dif.add_argument("--markdown", default=None, metavar="PATH",
                     help="write a Markdown summary for a pull-request comment ('-': stdout)")
    dif.add_argument("--fail-if", dest="fail_if", action="append", default=[], metavar="EXPR",
                     help="exit 1 when EXPR holds, e.g. 'macs>+5%%', 'params>+0', 'flops>2e9' (repeatable)")
    common(dif)

    idx = sub.add_parser("index", help="an HTML index with trends of every report under a directory")
    idx.add_argument("directory", metavar="DIR", help="directory searched recursively for .html and .json reports")
    idx.add_argument("-o", "--output", default=None, help="HTML path (default: DIR/index.html)")
    common(idx)
    return parser


_WRITTEN: list[str] = []  # files completed by this run, for an accurate message when interrupted


def _extra_outputs(args: argparse.Namespace) -> tuple[str | None, ...]:
    """The optional outputs of ``report``, for the checks before any work."""
    trace = getattr(args, "trace_path", None)
    csv_dir = getattr(args, "csv_dir", None)
    if trace and getattr(args, "runs", 1) == 0:
        raise UsageError("--trace draws measured latencies; with --runs 0 there are none (use --runs 1 or more)")
    if csv_dir and Path(csv_dir).exists() and not Path(csv_dir).is_dir():
        raise UsageError(f"--csv {csv_dir!r} is a file; give a directory (it is created if missing)")
    csvs = tuple(str(Path(csv_dir) / name) for name in ("ops.csv", "modules.csv")) if csv_dir else ()
    return (trace, *csvs)


def _write(report, html_path: str, json_path: str | None, say, trace_path: str | None = None,
           csv_dir: str | None = None) -> None:
    """Render every document before writing any, so a rendering failure writes nothing."""
    from .fileio import atomic_write_texts
    from .jsontext import document_text
    from .render.html import render_html
    document = report.to_dict()  # once, for the page and the JSON file
    items: list[tuple[str | Path, str]] = [(html_path, render_html(report, document))]
    if json_path:
        items.append((json_path, document_text(document) + "\n"))
    if trace_path:
        from .render.trace import trace_json
        items.append((trace_path, trace_json(report) + "\n"))
    if csv_dir:
        from .render.tables import csv_files
        items.extend((Path(csv_dir) / name, text) for name, text in csv_files(report).items())
    paths = atomic_write_texts(items, written=_WRITTEN)  # both or neither, even on Ctrl-C
    say(f"wrote {paths[0]} ({paths[0].stat().st_size / 1e6:.2f} MB)")
    for p in paths[1:]:
        say(f"wrote {p}")


def _same_file(p: str, q: str) -> bool:
    """Whether two paths name one file, however spelled: ``./a.html``, ``dir/../a.html``, a link, a hard link."""
    import os
    if os.path.realpath(p) == os.path.realpath(q):
        return True
    return os.path.exists(p) and os.path.exists(q) and os.path.samefile(p, q)


def _check_outputs(*paths: str | None, inputs: tuple[str, ...] = ()) -> None:
    """Each output writable, and no two of them (or an output and an input) the same file."""
    import os

    from .fileio import check_writable
    for p in paths:
        for q in inputs:
            if p and os.path.exists(q) and _same_file(p, q):
                raise UsageError(f"output {p!r} is the input {q!r}; writing it would destroy the report being read")
    seen: list[str] = []
    for p in paths:
        if not p:
            continue
        check_writable(p)
        for q in seen:
            if _same_file(p, q):
                raise UsageError(f"{q!r} and {p!r} are the same file; give each output (-o, --json, --onnx, "
                                 f"--markdown) its own path")
        seen.append(p)


def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo
    from .api import analyze
    _check_outputs(args.output, args.json_path)
    say = _progress(args.quiet)
    model, inputs = demo.build()
    report = analyze(model, inputs, title="mevreport demo: DemoResNet", name="DemoResNet", progress=say)
    _write(report, args.output, args.json_path, say)
    return EXIT_OK


def _report_onnx(args: argparse.Namespace) -> int:
    """``mevreport report model.onnx``: the same report, from the ONNX file (docs/onnx.md)."""
    from .loader import parse_named_shape
    from .onnx import analyze_onnx
    if args.onnx_path:
        raise UsageError("--onnx exports a PyTorch model; MODEL is already an ONNX file")
    if args.train:
        raise UsageError("--train needs a PyTorch model: an ONNX file has no backward to capture")
    if args.world_size is not None or args.shard or args.tp_size:
        raise UsageError("--world-size, --shard and --tp-size shard a PyTorch model: MODEL is an ONNX file")
    positional, named = [], {}
    for text in args.input_shape:
        key, shape = parse_named_shape(text)
        if key is None:
            positional.append(shape)
        else:
            named[key] = shape
    if args.runs < 0:
        raise UsageError("--runs must be 0 or more")
    name = Path(args.model).stem
    output = args.output or f"{name}.html"
    _check_outputs(output, args.json_path, *_extra_outputs(args))
    say = _progress(args.quiet)
    report = analyze_onnx(args.model, input_shapes=positional, named_shapes=named, device=args.device,
                          stats=not args.no_stats, runs=args.runs, title=args.title, label=args.label, name=name,
                          progress=say)
    _write(report, output, args.json_path, say, args.trace_path, args.csv_dir)
    return EXIT_OK


def _load_for_device(load_model, spec: str, device: str | None):
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
    except Exception:  # e.g. an import-time computation that needs data
        pass
    return load_model(spec)


def _train_options(args: argparse.Namespace) -> dict:
    """--loss and --optimizer resolved before the model loads, so a bad one fails first (one line, exit 2)."""
    from .capture.train import OPTIMIZERS
    from .loader import resolve_named
    options: dict = {"train": True}
    if args.loss:
        options["loss"] = resolve_named("--loss", args.loss)
    if args.optimizer:
        if ":" in args.optimizer:
            options["optimizer"] = resolve_named("--optimizer", args.optimizer)
        elif args.optimizer.lower() in OPTIMIZERS:
            options["optimizer"] = args.optimizer.lower()
        else:
            raise UsageError(f"unknown --optimizer {args.optimizer!r}: use {', '.join(OPTIMIZERS)} or "
                             f"pkg.module:factory")
    return options


def cmd_report(args: argparse.Namespace) -> int:
    from .api import analyze
    from .loader import check_input_shapes, load_model, parse_dtype, parse_shape, random_inputs
    from .onnx import is_onnx_path
    if is_onnx_path(args.model):
        return _report_onnx(args)
    if (args.loss or args.optimizer) and not args.train:
        raise UsageError("--loss and --optimizer apply to a training step: add --train")
    train_options = _train_options(args) if args.train else {}
    shapes = [parse_shape(s) for s in args.input_shape]
    dtype = parse_dtype(args.input_dtype)
    if args.runs < 0:
        raise UsageError("--runs must be 0 or more")
    if (args.shard or args.tp_size) and args.world_size is None:
        raise UsageError("--shard and --tp-size plan a sharded run: give the number of ranks with --world-size N")
    if args.world_size is not None:
        if args.device != "meta":
            raise UsageError("--world-size simulates ranks on fake tensors: add --device meta")
        from .distributed.simulate import check
        check(args.world_size, args.shard, args.tp_size)  # a bad world fails before the model is loaded
    say = _progress(args.quiet)
    loaded = _load_for_device(load_model, args.model, args.device)
    output = args.output or f"{loaded.name}.html"
    _check_outputs(output, args.json_path, args.onnx_path, *_extra_outputs(args))
    if shapes:
        check_input_shapes(loaded, args.model, shapes)
    inputs = random_inputs(shapes, dtype, device=args.device) if shapes else loaded.inputs
    if inputs is None:
        raise UsageError(f"{args.model!r} gives no example inputs: pass --input-shape (e.g. --input-shape 1,3,224,224)")
    say(f"loaded {type(loaded.module).__name__}")
    try:
        report = analyze(loaded.module, inputs, device=args.device, capture=args.capture, stats=not args.no_stats,
                         title=args.title, runs=args.runs, label=args.label, name=loaded.name, progress=say,
                         onnx_path=args.onnx_path, world_size=args.world_size, shard=args.shard,
                         tp_size=args.tp_size, **train_options)
    except ModelRunError as exc:
        if NO_CUDA_HINT in str(exc):  # the inputs are not what is wrong
            raise
        hint = "check --input-shape/--input-dtype" if shapes else "check the example inputs the callable returns"
        raise ModelRunError(f"{exc}; {hint}", op=exc.op, module_path=exc.module_path) from exc
    if report.onnx_export is not None and report.onnx_export.error:
        emit(f"mevreport: warning: ONNX export failed, report written without it: {report.onnx_export.error}")
    elif report.onnx_export is not None:
        say(f"wrote {report.onnx_export.path} ({report.onnx_export.exporter} exporter, opset {report.onnx_export.opset})")
    _write(report, output, args.json_path, say, args.trace_path, args.csv_dir)
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from .gates import parse_gates
    gates = parse_gates(args.fail_if)  # a malformed gate fails before any reading or writing (or importing torch)
    md_path = None if args.markdown in (None, "-") else args.markdown
    _check_outputs(args.output, md_path, inputs=(args.base, args.head))
    from .api import load
    from .diff import compare
    from .fileio import atomic_write_text
    from .gates import evaluate_all, lower_bound_warnings
    say = _progress(args.quiet)
    base, head = load(args.base), load(args.head)
    diff = compare(base, head, args.base, args.head)
    results = evaluate_all(gates, base, head)
    if args.output:
        from .diff_tree import module_tree
        from .render.diff_page import render_diff_html
        page = render_diff_html(diff, results, module_tree(base, head, diff), args.output, head)
        say(f"wrote {atomic_write_text(args.output, page)}")
    if args.markdown is not None or not args.output:
        from .render.markdown import render_markdown
        text = render_markdown(diff, results, html_name=Path(args.output).name if args.output else None)
        if md_path:
            say(f"wrote {atomic_write_text(md_path, text)}")
        else:
            from .terminal import terminal_safe
            sys.stdout.write(terminal_safe(text, keep_newlines=True) if sys.stdout.isatty() else text)
    for line in lower_bound_warnings(gates, base, head):
        emit(f"mevreport: {line}")
    failed = [r for r in results if r.failed]
    for r in failed:
        emit(f"mevreport: gate {r.line()}")
    if gates and not failed:
        say(f"all {len(gates)} gate(s) passed")
    return EXIT_GATE if failed else EXIT_OK


def cmd_index(args: argparse.Namespace) -> int:
    from .archive import scan
    from .fileio import atomic_write_text
    from .render.index_page import render_index_html
    if not Path(args.directory).is_dir():
        raise UsageError(f"{args.directory!r} is not a directory")
    output = args.output or str(Path(args.directory) / "index.html")
    _check_outputs(output)
    say = _progress(args.quiet)
    archive = scan(args.directory, exclude=(output,))
    for s in archive.skipped:
        say(f"warning: skipped {s.path}: {s.reason}")
    if not archive.entries:
        raise UsageError(f"no mevreport reports (.html or .json) found under {args.directory!r}")
    say(f"wrote {atomic_write_text(output, render_index_html(archive, output))} ({len(archive.entries)} reports)")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    _WRITTEN.clear()
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help(sys.stderr)
            return EXIT_USAGE
        handler = {"demo": cmd_demo, "report": cmd_report, "diff": cmd_diff, "index": cmd_index}[args.command]
        return handler(args)
    except MevreportError as exc:
        if debug:
            traceback.print_exc()
        emit(f"mevreport: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        done = f" after writing {', '.join(_WRITTEN)}" if _WRITTEN else ""
        emit(f"mevreport: interrupted{done}; no partial file was written"
             f"{'' if _WRITTEN else ', existing reports are unchanged'}")
        return EXIT_INTERRUPTED


def _terminated(signum: int, _frame: object) -> None:
    """SIGTERM (a CI timeout, ``kill``) unwinds like Ctrl-C, so temporary files are removed."""
    done = f" after writing {', '.join(_WRITTEN)}" if _WRITTEN else ""
    emit(f"mevreport: terminated{done}; no partial file was written")
    raise SystemExit(128 + signum)


def entry() -> None:  # pragma: no cover - console script wrapper
    signal.signal(signal.SIGTERM, _terminated)
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
