"""The GTSRB recipe's records read back: the selection on held-out tracks, the final runs with
their seeds' spread, and their accuracy on the jitter test sets.

``benchmarks/gtsrb_selection.py`` writes ``results/gtsrb_selection.json`` (the candidates, the
rule, the chosen run and the names of the final runs: the chosen recipe with and without
transformers, seeds 0, 1 and 2, on ``gtsrb``), each final run its own record, and
``jitter_<run>.json`` for each (:mod:`stn_course.gtsrb_jitter`). Notebook 06, the README's
headline and RESULTS.md read them through this module, so they cannot disagree.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .recipes import RunConfig, quick_config
from .records import config_of, read_result
from .utils import recorded_results_dir

#: the record of the choice (``results/<name>.json``)
SELECTION_RECORD = "gtsrb_selection"


def load_selection(folder: Path | None = None) -> dict | None:
    """``results/gtsrb_selection.json``, or None until the selection has chosen."""
    path = (folder or recorded_results_dir()) / f"{SELECTION_RECORD}.json"
    return read_result(path) if path.exists() else None


@dataclass(frozen=True)
class SeedSummary:
    """One model's final runs: test accuracies (%) by seed, their mean, range and standard deviation."""

    model: str
    accuracies: dict[int, float]
    minutes: dict[int, float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies.values())

    @property
    def low(self) -> float:
        return min(self.accuracies.values())

    @property
    def high(self) -> float:
        return max(self.accuracies.values())

    @property
    def spread(self) -> float:
        """Highest minus lowest accuracy over the seeds, in points."""
        return self.high - self.low

    @property
    def std(self) -> float:
        """The sample standard deviation over the seeds (0 for one seed), in points."""
        values = list(self.accuracies.values())
        return statistics.stdev(values) if len(values) > 1 else 0.0


def final_runs(selection: dict, records: Sequence[dict]) -> dict[str, SeedSummary]:
    """Model → :class:`SeedSummary` of the selection's final runs found among ``records``
    (:func:`~stn_course.records.load_run_results`); a model none of whose runs has finished is left out."""
    by_name = {record["name"]: record for record in records}
    summaries: dict[str, tuple[dict, dict]] = {}
    for name in selection["final_runs"]:
        record = by_name.get(name)
        if record is None:
            continue
        config = config_of(record)
        accuracies, minutes = summaries.setdefault(config.model, ({}, {}))
        accuracies[config.seed] = 100 * record["test_accuracy"]
        minutes[config.seed] = record["seconds_total"] / 60
    return {model: SeedSummary(model, dict(sorted(accuracies.items())), dict(sorted(minutes.items())))
            for model, (accuracies, minutes) in summaries.items()}


def final_configs(selection: dict, records: Sequence[dict], seed: int = 0, quick: bool = False) -> dict[str, RunConfig]:
    """Model → the config of the selection's final run at ``seed`` (read from its record among
    ``records``), shrunk by :func:`~stn_course.recipes.quick_config` if ``quick``: the run a
    notebook loads (shipped at seed 0) or, in quick mode, trains for a moment."""
    by_name = {record["name"]: record for record in records}
    configs = {}
    for name in selection["final_runs"]:
        if name in by_name:
            config = config_of(by_name[name])
            if config.seed == seed:
                configs[config.model] = quick_config(config) if quick else config
    return configs


def final_table(selection: dict, records: Sequence[dict]) -> str:
    """Markdown: per model of the final runs, each seed's last-epoch test accuracy, the mean, the
    range and the standard deviation over the seeds, and the minutes a run took."""
    summaries = final_runs(selection, records)
    lines = ["| model | seed 0 | seed 1 | seed 2 | mean | range (max - min) | std | minutes per run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for summary in summaries.values():
        seeds = [f"{summary.accuracies[seed]:.2f}%" if seed in summary.accuracies else "—" for seed in (0, 1, 2)]
        ends = dict.fromkeys(f"{value:.0f}" for value in (min(summary.minutes.values()), max(summary.minutes.values())))
        minutes = "–".join(ends)  # "14", not "14–14", when both ends round alike
        lines.append(f"| `{summary.model}` | {' | '.join(seeds)} | {summary.mean:.2f}% | {summary.spread:.2f} "
                     f"| {summary.std:.2f} | {minutes} |")
    return "\n".join(lines)


def load_jitter_results(selection: dict, folder: Path | None = None) -> dict[str, list[dict]]:
    """Model → the jitter records (``jitter_<run>.json``) of its final runs, in seed order; runs
    without one are left out."""
    folder = folder or recorded_results_dir()
    found: dict[str, list[dict]] = {}
    for name in selection["final_runs"]:
        path = folder / f"jitter_{name}.json"
        record = read_result(path) if path.exists() else None
        if record is not None:
            found.setdefault(record["model"], []).append(record)
    return {model: sorted(runs, key=lambda record: record["seed"]) for model, runs in found.items()}


def jitter_errors(jitter: dict[str, list[dict]]) -> dict[str, dict[str, list[float]]]:
    """Model → strength → test error (%) of each seed's run, from :func:`load_jitter_results`."""
    return {model: {row["strength"]: [next(r["error_percent"] for r in record["strengths"]
                                           if r["strength"] == row["strength"]) for record in runs]
                    for row in runs[0]["strengths"]}
            for model, runs in jitter.items()}


def jitter_table(jitter: dict[str, list[dict]]) -> str:
    """Markdown: the test error (%) at each jitter strength (shifts in pixels at 32x32), mean over the seeds with its range,
    for each model, and for a model with transformers how its input transformer's rotation
    follows the applied one (correlation, mean over seeds; near -1: it undoes the turn)."""
    errors = jitter_errors(jitter)
    models = list(errors)
    strengths = list(next(iter(errors.values()))) if errors else []
    first = next(iter(jitter.values()))[0]["strengths"] if jitter else []
    ranges = {row["strength"]: f"±{row['degrees']:g}°, zoom {row['scale'][0]:g}–{row['scale'][1]:g}, "
                               f"shift ±{row['shift'] * 16:g} px" for row in first}
    lines = ["| strength | rotation, zoom, shift | " + " | ".join(f"`{model}` error" for model in models)
             + " | input transformer's rotation vs applied (r) |", "|---|---|" + "---:|" * (len(models) + 1)]
    for strength in strengths:
        cells = []
        for model in models:
            values = errors[model][strength]
            cells.append(f"{statistics.fmean(values):.2f}% ({min(values):.2f}–{max(values):.2f})")
        read_back = [row["theta_read_back"]["rotation_correlation"] for runs in jitter.values() for record in runs
                     for row in record["strengths"] if row["strength"] == strength and "theta_read_back" in row
                     and row["theta_read_back"]["rotation_correlation"] is not None]
        correlation = f"{statistics.fmean(read_back):.2f}" if read_back else "—"
        lines.append(f"| {strength} | {ranges.get(strength, '')} | {' | '.join(cells)} | {correlation} |")
    return "\n".join(lines)
