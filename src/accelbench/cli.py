"""accelbench run | list | env | report | compare: parse, call the library, print."""

from __future__ import annotations

import argparse
import functools
import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from accelbench.config.presets import preset_names
from accelbench.config.specs import (
    AUTO_BATCH,
    COMPILE_MODES,
    FP8_RECIPES,
    LATENCY_BOUND_MS,
    PADDINGS,
    REFERENCE_BATCH,
    SCENARIOS,
    RunConfig,
)
from accelbench.errors import UserError


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _ints(what: str, auto: bool = False) -> Callable[[str], tuple[int, ...]]:
    """A comma list of positive whole numbers (and `auto` where allowed)."""

    def one(token: str) -> int:
        if auto and token == "auto":
            return AUTO_BATCH
        if not token.isdigit() or int(token) == 0:
            raise ValueError(token)
        return int(token)

    def parse(text: str) -> tuple[int, ...]:
        try:
            return tuple(one(x) for x in _csv(text))
        except ValueError:
            allowed = "a positive whole number" + (", auto," if auto else "")
            raise argparse.ArgumentTypeError(
                f"{what} must be {allowed} or a comma list of them, got {text!r}"
            ) from None

    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UserError(f"{message} (see `{self.prog} --help`)")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        """As argparse's, but an unknown option points at its command's help."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = getattr(parsed, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            raise UserError(f"unrecognized arguments: {' '.join(extra)} (see `{prog} --help`)")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    from accelbench import __version__

    p = _Parser(prog="accelbench", description=__doc__)
    p.add_argument("--version", action="version", version=f"accelbench {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a benchmark matrix")
    d = RunConfig()
    run.add_argument(
        "--model", default=d.model, help="bundled | bert-base | bert-large | HF id | local dir"
    )
    run.add_argument(
        "--tokenizer",
        default=None,
        metavar="DIR",
        help="take the tokenizer from DIR (saved with save_pretrained) instead of the model's; "
        "bert-base and bert-large default to the shipped bert-base-uncased vocabulary",
    )
    run.add_argument("--dataset", default=d.dataset, help="bundled | conll:DIR | hf:NAME[:CONFIG]")
    run.add_argument("--workloads", type=_csv, default=d.workloads, help="train,infer,serve")
    run.add_argument("--runtimes", type=_csv, default=d.runtimes, help="see `accelbench list`")
    run.add_argument("--devices", type=_csv, default=d.devices, help="cpu,cuda")
    run.add_argument(
        "--precisions",
        type=_csv,
        default=d.precisions,
        help="fp32,tf32,bf16,fp16,bf16-weights,fp16-weights,int8",
    )
    run.add_argument(
        "--padding", dest="paddings", type=_csv, default=d.paddings, help=",".join(PADDINGS)
    )
    run.add_argument(
        "--batch-size",
        dest="batch_sizes",
        type=_ints("batch size", auto=True),
        default=d.batch_sizes,
        help="one or a comma list (one cell per value); `auto` searches each cell's largest "
        "batch that fits and still raises throughput. The reference fine-tune uses the first "
        f"explicit value ({REFERENCE_BATCH} if only auto)",
    )
    run.add_argument(
        "--seq-len",
        dest="seq_lens",
        type=_ints("seq len"),
        default=d.seq_lens,
        help="one or a comma list",
    )
    length = run.add_mutually_exclusive_group()
    length.add_argument("--train-steps", type=int, default=d.train_steps)
    length.add_argument(
        "--epochs", type=float, default=None, help="train for N epochs instead of --train-steps"
    )
    run.add_argument(
        "--eval-limit", type=int, default=None, help="infer on the first N test sentences"
    )
    run.add_argument(
        "--grad-accum",
        type=int,
        default=d.grad_accum,
        help="micro-batches per optimizer step in training (effective batch = batch x this)",
    )
    run.add_argument("--lr", type=float, default=d.lr)
    run.add_argument("--seed", type=int, default=d.seed)
    run.add_argument(
        "--synthetic", action="store_true", help="fixed-shape random ids: pure speed, no F1"
    )
    run.add_argument(
        "--checkpoint",
        default=None,
        help="fine-tuned model dir to infer with (skips the reference fine-tune)",
    )
    run.add_argument("--compile-mode", default=d.compile_mode, choices=COMPILE_MODES)
    run.add_argument(
        "--fp8-recipe",
        default=d.fp8_recipe,
        choices=FP8_RECIPES,
        help="fp8 cells' torchao scaling: one scale per tensor, or per row (slower, closer)",
    )
    run.add_argument(
        "--f1-tolerance",
        type=float,
        default=d.f1_tolerance,
        help="F1 points below the fp32 reference before a cell is numeric_fail",
    )
    run.add_argument(
        "--accuracy-target",
        default=None,
        metavar="PCT%",
        help="instead of --f1-tolerance: a cell is numeric_fail below PCT%% of the fp32 "
        "reference's F1 (99%% or 99.9%%: MLPerf's BERT-99 / BERT-99.9)",
    )
    run.add_argument("--warmup-iters", type=int, default=d.warmup_iters)
    run.add_argument("--min-iters", type=int, default=d.min_iters)
    run.add_argument("--min-time", type=float, default=d.min_time, help="seconds")
    run.add_argument("--cell-timeout", type=float, default=d.cell_timeout, help="seconds")
    run.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (per process; with --nproc N each gets cores // N unless set)",
    )
    run.add_argument(
        "--repeats",
        type=int,
        default=d.repeats,
        help="run every cell N times, each in a fresh process, in interleaved rounds; training "
        "repeats use seeds seed, seed+1, ... (F1 held to the reference across seeds); figures "
        "get 95%% intervals across processes",
    )
    run.add_argument(
        "--target-f1",
        default=None,
        help="time to quality: dev-split entity F1 a training cell must reach, absolute (0.35) or "
        "ref:FRACTION of the fp32 reference's final dev F1 (ref:0.99); steps, sentences and "
        "seconds to reach it are recorded",
    )
    run.add_argument(
        "--eval-every",
        type=int,
        default=None,
        help="training steps between dev-F1 points (evaluated after training on snapshots taken "
        "outside the timed steps; default: 5 points per run)",
    )
    run.add_argument(
        "--nproc",
        dest="nprocs",
        type=_ints("nproc"),
        default=d.nprocs,
        help="training processes per train cell, one or a comma list: DistributedDataParallel "
        "(NCCL on CUDA, gloo on CPU) launched like torchrun; the 1-process cell runs too, as "
        "the scaling baseline",
    )
    run.add_argument(
        "--dist-timeout",
        type=float,
        default=d.dist_timeout,
        help="seconds a collective or the rendezvous waits for a peer before the cell fails",
    )
    run.add_argument(
        "--scenarios",
        type=_csv,
        default=d.scenarios,
        help="MLPerf LoadGen scenarios of serve cells (one cell each): " + ",".join(SCENARIOS),
    )
    run.add_argument(
        "--latency-bound-ms",
        type=float,
        default=None,
        help="server scenario: the p99 latency bound the served QPS must meet "
        f"(default: {', '.join(f'{v:g} on {k}' for k, v in LATENCY_BOUND_MS.items())})",
    )
    run.add_argument(
        "--serve-min-time",
        type=float,
        default=d.serve_min_time,
        help="seconds each LoadGen performance run lasts at least (MLPerf: 600)",
    )
    run.add_argument(
        "--serve-min-queries",
        type=int,
        default=d.serve_min_queries,
        help="queries (offline: samples) each LoadGen performance run issues at least",
    )
    run.add_argument(
        "--serve-max-wait-ms",
        type=float,
        default=d.serve_max_wait_ms,
        help="server scenario: how long a queued query waits for its batch to fill "
        "(batches hold at most --batch-size queries)",
    )
    run.add_argument(
        "--no-ceilings",
        dest="ceilings",
        action="store_false",
        help="skip measuring matmul/copy ceilings (MFU then uses datasheet peaks only)",
    )
    run.add_argument(
        "--ceilings",
        dest="ceilings_file",
        default=None,
        metavar="FILE",
        help="reuse ceilings measured before: RUN_DIR/ceilings.json or the JSON of "
        "`accelbench env --ceilings`; devices it lacks are measured",
    )
    run.add_argument(
        "--oom-backoff",
        action="store_true",
        help="on out-of-memory, halve the batch until it fits (the batch that ran is recorded)",
    )
    run.add_argument(
        "--in-process",
        action="store_true",
        help="run every cell in this process, its output on the console (for a debugger or a "
        "profiler): no --cell-timeout, a crash ends the run, and cells share what the earlier "
        "ones left; the report flags such a run",
    )
    run.add_argument(
        "--keep-checkpoint",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the reference fine-tune's RUN_DIR/checkpoint after the run (the default; it "
        "serves --checkpoint later); --no-keep-checkpoint deletes it once the run is complete",
    )
    run.add_argument(
        "--out", type=Path, default=None, help="run directory (default reports/<timestamp>-<host>)"
    )
    run.add_argument(
        "--plan",
        action="store_true",
        help="print the cells the run would have (and which cannot run here, and why); run nothing",
    )
    run.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="finish an interrupted run: only cells without a record run",
    )

    source = run.add_mutually_exclusive_group()
    source.add_argument(
        "--preset",
        default=None,
        help=f"a preset shipped with accelbench: {', '.join(preset_names())}; flags override it",
    )
    source.add_argument(
        "--matrix", type=Path, default=None, help="a YAML matrix file; flags override it"
    )
    _flags_override_presets(run)

    lst = sub.add_parser(
        "list", help="every runtime x device x precision x workload and whether it runs here"
    )
    for column in ("runtime", "device", "precision", "workload"):
        lst.add_argument(
            f"--{column}", type=_csv, default=(), help=f"only these {column}s (a comma list)"
        )
    lst.add_argument("--runnable", action="store_true", help="only what runs on this machine")
    lst.add_argument("--json", action="store_true", help="a JSON list of rows instead of a table")
    env = sub.add_parser("env", help="print this machine's environment fingerprint (JSON)")
    env.add_argument(
        "--ceilings",
        action="store_true",
        help="also measure matmul TFLOP/s per dtype and copy GB/s on each device here",
    )
    rep = sub.add_parser(
        "report", help="write report.html, report.md and summary.csv for run directories"
    )
    rep.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    rep.add_argument("--out", type=Path, default=None, help="default: the first RUN_DIR")
    cmp = sub.add_parser("compare", help="compare runs cell by cell against the first (BASE)")
    cmp.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="BASE NEW [NEW...]")
    cmp.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default: compare-BASE-vs-NEW beside the last RUN_DIR",
    )
    cmp.add_argument(
        "--fail-on-regression",
        type=float,
        default=None,
        metavar="PCT",
        help="exit 1 if a matched cell's throughput drops by more than PCT %% "
        "or its F1 by more than --f1-tolerance points",
    )
    cmp.add_argument("--f1-tolerance", type=float, default=RunConfig().f1_tolerance)
    return p


def _flags_override_presets(run: argparse.ArgumentParser) -> None:
    """RunConfig flags stay absent from the namespace unless given, so a preset can fill them;
    their defaults (RunConfig's own) are shown in --help."""
    keys = set(RunConfig.__dataclass_fields__)
    for action in run._actions:
        if action.dest in keys:
            if action.default not in (None, False) and action.nargs != 0:
                shown = action.default
                if isinstance(shown, tuple):
                    shown = ",".join(map(str, shown))
                action.help = f"{action.help or ''} (default: {shown})".lstrip()
            action.default = argparse.SUPPRESS


def run_options(args: argparse.Namespace) -> dict[str, object]:
    """The RunConfig settings given on the command line (absent ones are left to a preset)."""
    return {k: v for k, v in vars(args).items() if k in RunConfig.__dataclass_fields__}


def config_from_args(args: argparse.Namespace) -> RunConfig:
    from accelbench.api import config_of

    return config_of(run_options(args), args.preset, args.matrix)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the cell in flight is killed, the run says where it
    stopped, and the exit code is 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def interrupted(run_dir: Path) -> str:
    """What an interrupted run left and how to go on."""
    from accelbench.runner.matrix import RUN_FILE
    from accelbench.runner.store import RESULTS

    if not (run_dir / RUN_FILE).is_file():
        return "accelbench: interrupted before the run started: nothing was recorded"
    results = run_dir / RESULTS
    done = results.read_text().count("\n") if results.is_file() else 0
    resume = f"continue with `accelbench run --resume {run_dir}`"
    if not done:
        return f"accelbench: interrupted; no cell was recorded in {run_dir} yet ({resume})"
    cells = "1 cell is" if done == 1 else f"{done} cells are"
    return f"accelbench: interrupted; {cells} recorded in {results} ({resume})"


def cmd_run(args: argparse.Namespace) -> int:
    from accelbench import api
    from accelbench.runner.executors import torchrun_rank

    options = run_options(args)
    if args.resume:
        if options or args.preset or args.matrix or args.out or args.plan:
            raise UserError(
                f"--resume {args.resume} continues the run with its own settings (run.json): "
                "give no other run options"
            )
        run_dir, start = args.resume, functools.partial(api.run, resume=args.resume)
    elif args.plan:
        from accelbench.runner.plan import plan_table, require_runnable

        config = config_from_args(args)
        print(plan_table(config))
        require_runnable(config)
        return 0
    else:
        run_dir = args.out if args.out is not None else api.default_out()
        start = functools.partial(
            api.run, out=run_dir, preset=args.preset, matrix=args.matrix, **options
        )
    try:
        results = start()
    except KeyboardInterrupt as stop:
        if torchrun_rank() in (None, 0):
            print(interrupted(run_dir), file=sys.stderr)
        return 128 + getattr(stop, "signum", signal.SIGINT)
    if torchrun_rank() not in (None, 0):
        return 0  # under torchrun rank 0 reports
    print(results.summary())
    print(f"\nresults: {results.path / 'results.jsonl'}   report: accelbench report {results.path}")
    if not any(r["status"] in ("ok", "numeric_fail") for r in results.records):
        print(
            "accelbench: error: no cell of this run produced a result (see each one's reason)",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from accelbench.backends.capabilities import FILTERS, capability_rows, capability_table

    rows = capability_rows(**{c: getattr(args, c) for c in FILTERS})
    if args.runnable:
        rows = [r for r in rows if r["ok"]]
    print(json.dumps(rows, indent=2) if args.json else capability_table(rows))
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    from accelbench.measure.env import fingerprint

    info = fingerprint()
    if args.ceilings:
        from accelbench.measure import ceilings

        devices = ["cpu"] + (["cuda"] if info["gpu"] else [])
        info["ceilings"] = {
            d: ceilings.measure(d, ("float32", "tf32", "bfloat16", "float16")) for d in devices
        }
    print(json.dumps(info, indent=2))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from accelbench.report.render import write_report

    for path in write_report(args.run_dirs, args.out):
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from accelbench.report.compare import run_compare

    if len(args.run_dirs) < 2:
        raise UserError("compare needs BASE and at least one NEW run directory")
    return run_compare(
        args.run_dirs,
        args.out,
        args.fail_on_regression,
        args.f1_tolerance,
        warn=lambda line: print(f"accelbench: warning: {line}", file=sys.stderr),
    )


COMMANDS = {
    "run": cmd_run,
    "list": cmd_list,
    "env": cmd_env,
    "report": cmd_report,
    "compare": cmd_compare,
}


def main(argv: list[str] | None = None) -> int:
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"accelbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print("accelbench: interrupted", file=sys.stderr)
        return 128 + getattr(stop, "signum", signal.SIGINT)
    finally:
        if main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)
