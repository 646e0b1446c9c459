"""Command line: reproduce the course's results without Jupyter.

    python -m stn_course train --dataset mnist --model st-cnn-aff --epochs 5
    python -m stn_course train --dataset rts-mnist --model st-cnn-aff --epochs 8 --set window=28 --set amp=true
    python -m stn_course report --update-readme   # README's headline table and RESULTS.md, from results/*.json
    python -m stn_course report --mine   # your own runs ($STN_COURSE_OUTPUT/results) below the course's
    python -m stn_course errors --dataset rts-mnist --model st-cnn-aff --epochs 8   # what a finished run gets wrong
    python -m stn_course diagnose --dataset rts-mnist --model st-cnn-aff --epochs 8   # its transformer's health

Each run checkpoints every epoch in $STN_COURSE_CHECKPOINTS (default <data root>/checkpoints;
rerun the same command to resume after an interruption (Ctrl-C stops a run with one line and
status 130), or add --restart to train from scratch) and writes its result,
<dataset>_<model>_e<epochs>_s<seed>[_<recipe>].json, to $STN_COURSE_OUTPUT/results (default
<data root>/stn_course_output/results), outside the repository; --record writes it to the
course's results/ instead. The recipe label names the variant and every setting changed with
--set (e.g. _window-28_amp=true). `errors` takes the same options as `train`, loads the
finished run and writes errors_<run>.json (see stn_course.analysis); `diagnose` loads it and
prints its transformer's health check (see stn_course.health); `jitter` writes jitter_<run>.json,
its accuracy on GTSRB's jittered test sets (see stn_course.gtsrb_jitter). `record-evolution`
records the transformer learning that notebooks 05 and 06 animate (see stn_course.recording).
"""
from __future__ import annotations

# Only the standard library at import time: `--help` answers at once, and torch and the
# course's modules are imported by the commands that need them.
import argparse
import sys
from typing import TYPE_CHECKING

# the course's names (no torch: names.py imports only the standard library and validation.py)
from .names import COMMAND_NAMES, DATASET_NAMES, MODEL_NAMES, VARIANT_NAMES

if TYPE_CHECKING:  # annotations only: importing these at run time would import torch
    import torch

    from .recipes import RunConfig


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help (unless the help states it in words), and the
    description's line breaks kept."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        return text if "(default:" in text else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m stn_course`` and its commands ``train``, ``errors``, ``report``."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's default must not overwrite a --debug given before it
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error (default: the message alone)")
    parser = argparse.ArgumentParser(prog="python -m stn_course", description=__doc__,
                                     formatter_class=_HelpFormatter, parents=[common])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMAND_NAMES) + "}")
    train = commands.add_parser("train", help="train one model (or load it if finished) and save its result",
                                description="Train one run, resuming its checkpoint; a finished run is loaded.",
                                formatter_class=_HelpFormatter, parents=[common])
    _add_run_arguments(train)
    train.add_argument("--no-shipped", action="store_true",
                       help="train even if the course ships this run's trained model in checkpoints/")
    train.add_argument("--restart", action="store_true",
                       help="delete this run's checkpoint first and train it from scratch (e.g. when the "
                            "checkpoint belongs to another run); implies --no-shipped")
    train.add_argument("--ship", action="store_true",
                       help="also save the trained weights (float16) to checkpoints/ in the repository")
    errors = commands.add_parser("errors", help="save what a finished run gets wrong on its test set",
                                 description="Load a finished run and save its errors on the test set.",
                                 formatter_class=_HelpFormatter, parents=[common])
    _add_run_arguments(errors)
    diagnose = commands.add_parser("diagnose", help="print the health check of a finished run's spatial transformer",
                                   description="Load a finished run and print its transformer's health check "
                                   "on its first 1000 test images.", formatter_class=_HelpFormatter, parents=[common])
    _add_run_arguments(diagnose, record=False)
    jitter = commands.add_parser("jitter", help="save a finished GTSRB run's accuracy on the jitter test sets",
                                 description="Load a finished run on gtsrb and save its accuracy on the official test "
                                             "set turned, zoomed and shifted at each strength (stn_course.gtsrb_jitter).",
                                 formatter_class=_HelpFormatter, parents=[common])
    _add_run_arguments(jitter)
    evolution = commands.add_parser(
        "record-evolution", help="train one epoch from scratch and save the θ history that notebooks 05 and 06 "
        "animate (minutes on a CPU)", formatter_class=_HelpFormatter, parents=[common])
    # one epoch from scratch; notebook 06 ships --dataset gtsrb --model gtsrb-st-cnn
    evolution.add_argument("--dataset", choices=DATASET_NAMES, default="rts-mnist", metavar="DATASET",
                           help="dataset of the recorded epoch")
    evolution.add_argument("--model", choices=MODEL_NAMES, default="st-cnn-aff", metavar="MODEL",
                           help="model (with a spatial transformer) of the recorded epoch")
    evolution.add_argument("--record", action="store_true",
                           help="write the shipped file in checkpoints/ and its record in results/ (maintainers)")
    report = commands.add_parser("report", help="print the results table (Markdown) from results/*.json",
                                 description="Print the course's results table from results/*.json (--mine: yours too).",
                                 formatter_class=_HelpFormatter, parents=[common])
    report.add_argument("--update-readme", action="store_true", help="also rewrite the README's generated table and RESULTS.md")
    report.add_argument("--mine", action="store_true",
                        help="also list your own runs and error analyses, from $STN_COURSE_OUTPUT/results "
                             "(by default <data root>/stn_course_output/results), below the course's")
    if set(commands.choices) != set(COMMAND_NAMES):
        raise RuntimeError(f"the commands {tuple(commands.choices)} are not names.COMMAND_NAMES {COMMAND_NAMES}")
    return parser


def _add_run_arguments(parser: argparse.ArgumentParser, record: bool = True) -> None:
    """The options that name a run (dataset, model, epochs, seed, variant, settings), and
    where it runs and (if ``record``) records."""
    parser.add_argument("--dataset", choices=DATASET_NAMES, default="mnist", help="the dataset to train and test on")
    parser.add_argument("--model", choices=MODEL_NAMES, default="st-cnn-aff",
                        help="the network (st-*: with spatial transformers)")
    parser.add_argument("--epochs", type=int, default=5, help="passes over the training set (at least 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights, shuffling and augmentation")
    parser.add_argument("--variant", choices=VARIANT_NAMES, default="",
                        help="a named change to the default recipe, e.g. momentum or no-augment (default: none)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="settings",
                        help="change one setting of the recipe (repeatable), e.g. window=28 (an ST-CNN's "
                             "output window), amp=true (bfloat16 mixed precision on the CPU), lr=0.001 "
                             "(default: none)")
    parser.add_argument("--device", default=None,
                        help="cpu or cuda (default: $STN_COURSE_DEVICE, else cuda if available, else cpu)")
    if record:
        parser.add_argument("--record", action="store_true",
                            help="write the result to the course's results/ (for the course's own recorded runs), "
                                 "not to $STN_COURSE_OUTPUT/results")


def main(argv: list[str] | None = None) -> int:
    """Run a command; a known error (:class:`~stn_course.errors.CourseError`) prints its
    message alone and returns 1, unless ``--debug`` asks for the traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # --epochs and the other settings are checked once, when the run's RunConfig is built
    from .errors import CourseError  # no torch: errors.py imports nothing

    try:
        return _run(args, parser)
    except CourseError as error:
        if getattr(args, "debug", False):
            raise
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:  # Ctrl-C: one line (a TrainingInterrupted says where), status 130
        if getattr(args, "debug", False):
            raise
        print(str(interrupt) or "Interrupted before training started: nothing was saved; the same command "
                                "starts again.", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The command's work, with its imports."""
    if args.command == "report":
        status = _report(args.update_readme)
        if args.mine:
            _report_own_runs()
        return status
    if args.command == "record-evolution":
        from .recording import evolution_run, record_evolution

        print("Recorded:", record_evolution(record=args.record, run=evolution_run(args.dataset, args.model)))
        return 0
    from dataclasses import replace

    from .recipes import check_hand_settings, default_config, parse_setting
    from .utils import get_device, is_quick

    config = default_config(args.dataset, args.model, args.epochs, args.seed, args.variant, quick=is_quick())
    try:
        settings = [parse_setting(setting) for setting in args.settings]
    except ValueError as error:
        parser.error(f"--set: {error}")
    # an allowed type but a value out of range (e.g. max_grad_norm=-1), or one that does not fit the
    # model, raises InvalidSettingError, a CourseError: its message alone, before any data is loaded
    config = replace(config, **dict(settings))
    check_hand_settings(config, settings)
    device = get_device(args.device)
    if args.command == "errors":
        import json

        from .analysis import describe_error_summary
        from .results import record_errors

        path = record_errors(config, device=device, record=args.record)
        print(f"{config.name}: {describe_error_summary(json.loads(path.read_text()))}")
        print("Saved the errors to", path)
        return 0
    if args.command == "diagnose":
        from .health import diagnose_run

        print("\n\n".join(str(report) for report in diagnose_run(config, device=device)))
        return 0
    if args.command == "jitter":
        from .gtsrb_jitter import record_jitter

        print("Saved the jitter results to", record_jitter(config, device=device, record=args.record))
        return 0
    return _train(config, device, args)


def _report(update_readme: bool) -> int:
    """Print the results table; a bad results file is named on stderr and left out, and then
    the README is not rewritten (it would silently lose the file's row)."""
    import warnings

    from .records import BadResultWarning
    from .report import results_table, update_readme_results

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BadResultWarning)
        print(results_table())
    bad = [warning for warning in caught if issubclass(warning.category, BadResultWarning)]
    for warning in bad:
        print(f"Warning: {warning.message}", file=sys.stderr)
    if update_readme and bad:
        print("Not updating the README and RESULTS.md: fix or remove the files named above first.", file=sys.stderr)
        return 1
    if update_readme:
        update_readme_results()
    return 0


def _report_own_runs() -> None:
    """Print the learner's own runs (``$STN_COURSE_OUTPUT/results``) as tables of their own, after
    the course's; a bad file there is named on stderr and left out (it never blocks the README)."""
    import warnings

    from .records import BadResultWarning, load_error_results
    from .report import errors_table, results_table
    from .utils import results_dir

    folder = results_dir(record=False)
    print(f"\nYour own runs, from {folder}:\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BadResultWarning)
        table, errors = results_table(folder), load_error_results(folder)
    for warning in caught:
        if issubclass(warning.category, BadResultWarning):
            print(f"Warning: {warning.message}", file=sys.stderr)
    if len(table.splitlines()) > 2:
        print(table)
    else:
        print("None yet: `python -m stn_course train ...` (or a notebook) writes each finished run's result here.")
    if errors:
        print(f"\n{errors_table(errors)}")


def _train(config: "RunConfig", device: "torch.device", args: argparse.Namespace) -> int:
    """Train (or load) the run and say where its checkpoint and result are."""
    from .experiments import run_experiment
    from .results import describe_finished_run, format_duration
    from .shipped import ship_checkpoint
    from .utils import checkpoint_dir, results_dir

    checkpoint = checkpoint_dir() / f"{config.name}.pt"
    if args.restart and checkpoint.exists():
        from .runlock import run_lock

        with run_lock(checkpoint):  # never while the run trains in another process
            checkpoint.unlink()
        print(f"Restarting {config.name}: deleted its checkpoint {checkpoint}.")
    experiment = run_experiment(config, device=device, record=args.record,
                                use_shipped=not (args.no_shipped or args.restart))
    history = experiment.history
    if args.ship:
        print("Shipped the weights to", ship_checkpoint(experiment))
    if history.trained_now == 0:
        if checkpoint.exists():  # (a shipped model was described when it loaded)
            print(f"{config.name}: loaded, not trained: {describe_finished_run(config.name, history)}.")
        return 0
    accuracy = history.test_accuracy[-1]
    print(f"{config.name}: test accuracy {100 * accuracy:.2f}% (error {100 * (1 - accuracy):.2f}%), "
          f"{history.trained_now} epoch{'s' * (history.trained_now != 1)} trained in "
          f"{format_duration(sum(history.seconds[-history.trained_now:]))}")
    print(f"Checkpoint: {checkpoint}")
    result = results_dir(args.record) / f"{config.name}.json"
    if history.epochs == config.epochs and result.exists():
        print(f"Result:     {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
