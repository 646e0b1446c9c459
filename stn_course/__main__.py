"""Command line: reproduce the course's results without Jupyter.

    python -m stn_course train --dataset mnist --model st-cnn-aff --epochs 5
    python -m stn_course train --dataset rts-mnist --model st-cnn-aff --epochs 8 --set window=28 --set amp=true
    python -m stn_course report --update-readme   # README's headline table and RESULTS.md, from results/*.json
    python -m stn_course errors --dataset rts-mnist --model st-cnn-aff --epochs 8   # what a finished run gets wrong

Each run checkpoints every epoch under the data root (rerun the same command to resume
after an interruption) and writes ``results/<dataset>_<model>_e<epochs>_s<seed>[_<recipe>].json``, the recipe label
naming the variant and every setting changed with ``--set`` (e.g. ``_window-28_amp=true``).
``errors`` takes the same options as ``train``, loads the finished run and writes
``results/errors_<run>.json`` (see :mod:`stn_course.analysis`).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from .experiments import DATASETS, VARIANTS, default_config, parse_setting, run_experiment
from .registry import MODEL_NAMES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stn_course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train one model and record its result")
    _add_run_arguments(train)
    train.add_argument("--ship", action="store_true",
                       help="also save the trained weights (float16) to checkpoints/ in the repository")
    errors = commands.add_parser("errors", help="record what a finished run gets wrong on its test set")
    _add_run_arguments(errors)
    report = commands.add_parser("report", help="print the results table (Markdown) from results/*.json")
    report.add_argument("--update-readme", action="store_true",
                        help="also rewrite the README's generated table and RESULTS.md")
    args = parser.parse_args(argv)

    if args.command == "report":
        from .report import results_table, update_readme_results

        print(results_table())
        if args.update_readme:
            update_readme_results()
        return 0
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    from .utils import get_device, is_quick

    config = default_config(args.dataset, args.model, args.epochs, args.seed, args.variant, quick=is_quick())
    try:
        config = replace(config, **dict(parse_setting(setting) for setting in args.settings))
    except ValueError as error:
        parser.error(f"--set: {error}")
    if args.command == "errors":
        from .experiments import record_errors

        try:
            print("recorded:", record_errors(config, device=get_device(args.device)))
        except FileNotFoundError as error:
            print(error, file=sys.stderr)
            return 1
        return 0
    experiment = run_experiment(config, device=get_device(args.device))
    if args.ship:
        from .experiments import ship_checkpoint

        print("shipped:", ship_checkpoint(experiment))
    accuracy = experiment.history.test_accuracy[-1]
    print(f"{config.name}: test accuracy {100 * accuracy:.2f}% (error {100 * (1 - accuracy):.2f}%) "
          f"in {sum(experiment.history.seconds):.0f} s")
    return 0


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that name a run: dataset, model, epochs, seed, variant, settings, device."""
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    parser.add_argument("--model", choices=MODEL_NAMES, default="st-cnn-aff")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="",
                        help="a named change to the default recipe, e.g. momentum or no-augment")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="settings",
                        help="change one setting of the recipe (repeatable), e.g. window=28 (an ST-CNN's "
                             "output window), amp=true (bfloat16 mixed precision on the CPU), lr=0.001")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")


if __name__ == "__main__":
    sys.exit(main())
