"""Tables made from ``results/``: the course's recorded runs as Markdown.

Every table the README, ``RESULTS.md`` and the notebooks show is built here from the JSON
records that :mod:`stn_course.results` and ``benchmarks/`` write, so no number is typed
by hand. ``python -m stn_course report --update-readme`` rewrites the README's generated
blocks (``<!-- NAME:start -->`` … ``<!-- NAME:end -->``) and ``RESULTS.md``.

A results file that cannot be read or lacks what the tables need is never used: it is left
out with a :class:`~stn_course.records.BadResultWarning` naming it (and ``--update-readme`` then refuses to run).
"""
from __future__ import annotations

import json
import re
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from .gtsrb_results import final_configs, final_runs, final_table, jitter_table, load_jitter_results, load_selection
from .published import CIFAR10_REPORTED, GTSRB_PUBLISHED, PAPER_TABLE1
from .records import config_of, load_error_results, load_run_results
from .recipes import FINAL_DROP_AT, recipe_config, recipe_parts
from .course_files import write_results_index
from .utils import recorded_results_dir, repo_root


def errors_table(records: list[dict], confusions: int = 3) -> str:
    """Error analyses as Markdown: per run, the test error, the share of test digits whose ink
    reaches the image's edge, the error rate on those and on the rest, and the most frequent
    confusions (``9→4 (6)``: six 9s read as 4). A run analysed with its shipped float16
    weights says so."""
    lines = ["| run | test error | digits touching the edge | error on those | error on the rest "
             "| most frequent confusions |", "|---|---|---|---|---|---|"]

    def percent(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}%"

    for record in records:
        pairs = ", ".join(f"{c['true']}→{c['predicted']} ({c['count']})" for c in record["confusions"][:confusions])
        at_edge = record["errors_touching_edge"]
        shipped = " (shipped float16 weights)" if record["weights"] == "shipped float16" else ""
        lines.append(f"| `{record['run']}`{shipped} | {record['error_percent']:.2f}% ({record['errors']}) "
                     f"| {100 * record['images_touching_edge'] / record['test_samples']:.1f}% "
                     f"| {percent(record['error_percent_touching_edge'])} ({at_edge}) "
                     f"| {percent(record['error_percent_inside'])} ({record['errors'] - at_edge}) | {pairs} |")
    return "\n".join(lines)


def results_table(folder: Path | None = None) -> str:
    """Every training run (Markdown), made from ``results/*.json``."""
    lines = [
        "| run | test accuracy | test error | epochs | training time | machine | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for record in load_run_results(folder):
        machine = record["machine"]
        where = machine["cuda"] or f"{machine['cpu_count']}-core CPU"
        lines.append(
            f"| `{record['name']}` | {100 * record['test_accuracy']:.2f}% | {record['test_error_percent']:.2f}% "
            f"| {record['epochs']} | {record['seconds_total'] / 60:.1f} min | {where}, torch {machine['torch']} "
            f"| `{record['command']}` |")
    return "\n".join(lines)


#: CIFAR-10 test accuracy (%) the course aims at with its own models (the reported ones: published.py)
CIFAR10_TARGET = {"cifar-st-resnet": 85.0, "cifar-resnet": 85.0}


def cifar10_table(records: list[dict]) -> str:
    """CIFAR-10 runs as Markdown: model, recipe, parameters, epochs, test accuracy beside
    the reported or target accuracy, training time, and the command that reproduces it."""
    lines = ["| model | recipe | parameters | epochs | test accuracy | reported / target | training time | command |",
             "|---|---|---|---|---|---|---|---|"]
    for record in sorted((r for r in records if r["config"]["dataset"] == "cifar10"), key=lambda r: r["name"]):
        config = record["config"]
        model = config["model"]
        recipe = f"{config['optimizer'].upper()} lr {config['lr']:g}"
        if config.get("momentum"):
            recipe += f", momentum {config['momentum']:g}" + (" (Nesterov)" if config.get("nesterov") else "")
        if config.get("schedule") == "onecycle":
            recipe += ", one-cycle"
        elif config.get("schedule") == "final-drop":
            recipe += f", lr ÷ 10 from epoch {round(FINAL_DROP_AT * record['epochs']) + 1}"
        if config.get("label_smoothing"):
            recipe += f", label smoothing {config['label_smoothing']:g}"
        recipe += ", crop + flip" if config.get("augment", True) else ", no augmentation"
        if model in CIFAR10_REPORTED:
            goal = f"{CIFAR10_REPORTED[model]:.0f}% reported"
        elif model in CIFAR10_TARGET:
            goal = f"≥ {CIFAR10_TARGET[model]:.0f}% target"
        else:
            goal = ""
        variant = f" ({config['variant']})" if config.get("variant") else ""
        time = f"{record['seconds_total'] / 60:.1f} min"
        machine = record.get("machine")
        if machine and not machine.get("cuda"):
            threads = machine["torch_threads"]
            time += f" ({threads} CPU thread{'s' if threads > 1 else ''})"
        lines.append(f"| `{model}`{variant} | {recipe} | {record['parameters']:,} | {record['epochs']} "
                     f"| **{100 * record['test_accuracy']:.2f}%** | {goal} | {time} | `{record['command']}` |")
    return "\n".join(lines)


def sampler_benchmark_table(folder: Path | None = None) -> str:
    """The NumPy-vs-PyTorch sampler table, from ``results/sampler_benchmark.json``."""
    record = _benchmark_record(folder, "sampler")
    if record is None:
        return _NOT_RECORDED.format("sampler")
    threads = record["machine"]["torch_threads"]
    lines = [f"| image (batch {record['settings']['batch']}) | pass | NumPy | torch, {threads} threads | ratio "
             "| torch, 1 thread | ratio |", "|---|---|---|---|---|---|---|"]
    for row in record["rows"]:
        lines.append(f"| {row['image']} | {row['pass']} | {1000 * row['numpy_s']:.3f} ms | {1000 * row['torch_s']:.3f} ms "
                     f"| {row['ratio']:.2f}x | {1000 * row['torch_1_thread_s']:.3f} ms | {row['ratio_1_thread']:.2f}x |")
    machine = record["machine"]
    lines += ["", f"{_measured_on(record)}, NumPy {machine['numpy']}, torch {machine['torch']}; "
                  f"ratio = NumPy time / torch time."]
    return "\n".join(lines)


def pipeline_benchmark_table(folder: Path | None = None) -> str:
    """The data-pipeline and STN-overhead table, from ``results/pipeline_benchmark.json``."""
    record = _benchmark_record(folder, "pipeline")
    if record is None:
        return _NOT_RECORDED.format("pipeline")
    lines = ["| measurement | data | model | seconds per epoch | the data alone | test accuracy after training "
             "| ratio |", "|---|---|---|---|---|---|---|"]
    for comparison in record["pipeline"].values():
        dataset, model = comparison["dataset"], comparison["model"]
        (tutorial_name, tutorial), (course_name, course) = comparison["runs"].items()
        speedup = comparison["speedup"]
        ratio = (f"**{speedup:.2f}x** " + ("faster" if speedup >= 1 else f"the speed ({1 / speedup:.2f}x slower)")
                 + f"; {comparison['data_speedup']:.0f}x for the data alone")
        lines.append(f"| {tutorial_name} ({comparison['num_workers']} workers) | {dataset} | `{model}` "
                     f"| {tutorial['seconds_per_epoch']:.1f} | {tutorial['data_seconds_per_epoch']:.1f} "
                     f"| {100 * tutorial['test_accuracy']:.2f}% | |")
        lines.append(f"| {course_name} | {dataset} | `{model}` | {course['seconds_per_epoch']:.1f} "
                     f"| {course['data_seconds_per_epoch']:.1f} | {100 * course['test_accuracy']:.2f}% | {ratio} |")
    overhead = record["stn_overhead"]
    lines.append(f"| training | rts-mnist | `cnn` | {overhead['runs']['cnn']['seconds_per_epoch']:.1f} | | | |")
    for name, ratio in overhead["ratios"].items():
        model, _, detail = name.partition(", ")
        text = (f"**{ratio['median']:.2f}x** the CNN's time (median of {overhead['rounds']} interleaved turns, "
                f"{min(ratio['turns']):.2f}–{max(ratio['turns']):.2f})")
        lines.append(f"| training | rts-mnist | `{model}`{', ' + detail if detail else ''} "
                     f"| {overhead['runs'][name]['seconds_per_epoch']:.1f} | | | {text} |")
    measured = "whole epochs" if record["batches_per_measurement"] is None else \
        f"{record['batches_per_measurement']} batches per measurement, scaled to an epoch"
    lines += ["", f"{_measured_on(record)} ({measured}), torch {record['machine']['torch']}, "
                  f"batch {record['batch_size']}."]
    return "\n".join(lines)


#: what a benchmark table says before its benchmark has been run (``.format(name)``)
_NOT_RECORDED = "(no benchmark recorded yet: run `python benchmarks/{}.py`)"


def _benchmark_record(folder: Path | None, name: str) -> dict | None:
    """``<folder>/<name>_benchmark.json`` (``results/`` by default), or None if never recorded."""
    path = (folder or recorded_results_dir()) / f"{name}_benchmark.json"
    return json.loads(path.read_text()) if path.exists() else None


def _measured_on(record: dict) -> str:
    """``Measured <date time> on a <cores>-core <processor> CPU`` for a benchmark record."""
    machine = record["machine"]
    return (f"Measured {record['finished_at'][:16].replace('T', ' ')} on a {machine['cpu_count']}-core "
            f"{machine['processor']} CPU")


def best_run(chosen: dict[tuple[str, str, str], dict], dataset: str,
             models: Sequence[str] | None = None) -> dict | None:
    """The record of lowest test error among ``chosen`` (:func:`longest_runs`) on ``dataset``,
    of one of ``models`` if given; None if there is none."""
    runs = [record for (name, model, _), record in chosen.items()
            if name == dataset and (models is None or model in models)]
    return min(runs, key=lambda record: record["test_error_percent"], default=None)


def gtsrb_table(records: Sequence[dict]) -> str:
    """Markdown: the published GTSRB results (:data:`stn_course.published.GTSRB_PUBLISHED`)
    and our GTSRB runs (results JSON records from :func:`load_run_results`) in one table."""
    lines = ["| model | test accuracy | input | augmentation | epochs | hardware, training time | source |",
             "| --- | ---: | --- | --- | ---: | --- | --- |"]
    for row in GTSRB_PUBLISHED:
        lines.append(f"| {row['name']} | {row['accuracy']:.2f}% | {row['input']} | {row['augmentation']} "
                     f"| | {row['hardware']} | {row['source']} (published) |")
    for record in records:
        config = record["config"]
        augmentation = "small random affine (±10°, scale 0.9–1.1, shift ±1.6 px)" if config["augment"] else "none"
        if config["augment"] and config.get("brightness_contrast"):
            augmentation += f", brightness and contrast ×(1 ± {config['brightness_contrast']:g})"
        machine = record["machine"]
        hardware = machine["cuda"] if machine.get("cuda") else f"{machine['cpu_count']}-core CPU"
        lines.append(f"| ours: `{config['model']}`, seed {config['seed']} | {100 * record['test_accuracy']:.2f}% "
                     f"| 32x32 | {augmentation} | {record['epochs']} | {hardware}, "
                     f"{record['seconds_total'] / 60:.0f} min | `{record['command']}` |")
    return "\n".join(lines)


def headline_table(records: list[dict], selection: dict | None = None) -> str:
    """The README's headline table: plain MNIST, each column of the paper's Table 1 and the
    CIFAR-10 models, the reference figure (the paper's best model for the cell, the accuracy
    the course material reports, or the course's target) beside the course's best recorded
    run at seed 0. The best is chosen on the test set, as the paper's table is read; except on
    GTSRB, whose recipe was chosen on held-out tracks (``selection``, default
    ``results/gtsrb_selection.json``): there the seed-0 final run, with its seeds' mean and range."""
    chosen = longest_runs(records)
    lines = ["| task | measure | reference | ours | our run |", "|---|---|---|---|---|"]

    def ours(record: dict | None, accuracy: bool) -> tuple[str, str]:
        if record is None:
            return "—", "not run yet"
        value = 100 * record["test_accuracy"] if accuracy else record["test_error_percent"]
        return f"**{value:.2f}%**", f"`{record['name']}`"

    mnist = ours(best_run(chosen, "mnist"), accuracy=False)
    lines.append(f"| MNIST | test error | — | {mnist[0]} | {mnist[1]} |")
    for column, dataset in TABLE1_COLUMNS.items():
        figures = {model: errors[column] for model, errors in PAPER_TABLE1.items() if column in errors}
        best = min(figures.values())
        models = ", ".join(model for model, error in figures.items() if error == best)
        cell = ours(best_run(chosen, dataset, list(PAPER_TABLE1)), accuracy=False)
        lines.append(f"| {dataset} ({column}) | test error | {best}% (paper, {models}) | {cell[0]} | {cell[1]} |")
    for model in [*CIFAR10_REPORTED, *CIFAR10_TARGET]:
        reference = (f"{CIFAR10_REPORTED[model]:.0f}% (course material)" if model in CIFAR10_REPORTED
                     else f"≥ {CIFAR10_TARGET[model]:.0f}% (the course's target)")
        runs = {key: record for key, record in chosen.items() if key[1] == model}
        cell = ours(best_run(runs, "cifar10"), accuracy=True)
        lines.append(f"| CIFAR-10, `{model}` | test accuracy | {reference} | {cell[0]} | {cell[1]} |")
    selection = load_selection() if selection is None else selection
    finals = final_runs(selection, records) if selection else {}
    seed_0_runs = {model: config.name for model, config in final_configs(selection, records).items()} if selection else {}
    by_name = {record["name"]: record for record in records}
    for published in (row for row in GTSRB_PUBLISHED if row["model"]):
        model = published["model"]
        reference = f"{published['accuracy']:.2f}% ({published['by']}, {published['input']})"
        seed_0 = by_name.get(seed_0_runs.get(model))
        runs = {key: record for key, record in chosen.items() if key[1] == model}
        cell = ours(seed_0 or best_run(runs, "gtsrb"), accuracy=True)
        if seed_0 is not None and len(finals[model].accuracies) > 1:  # the seed-0 run, and the seeds' mean and range
            summary = finals[model]
            cell = (f"{cell[0]} ({len(summary.accuracies)} seeds: mean {summary.mean:.2f}%, "
                    f"{summary.low:.2f}–{summary.high:.2f})", cell[1])
        lines.append(f"| GTSRB (32x32), `{model}` | test accuracy | {reference} | {cell[0]} | {cell[1]} |")
    return "\n".join(lines)


#: The README's generated blocks (``<!-- NAME:start -->`` … ``<!-- NAME:end -->``): name → table.
README_BLOCKS: dict[str, Callable[[], str]] = {
    "headline": lambda: headline_table(load_run_results()),
}


def round_2_table(selection: dict, records: Sequence[dict]) -> str:
    """Round 2 of the GTSRB selection (``selection["round_2"]``) as Markdown: per candidate its
    change from round 1's choice (the first candidate), epochs, accuracy on ``gtsrb-val``'s
    held-out tracks at each seed and the images right over all seeds (a dash until run); the
    chosen candidate in bold, then the rule. A line saying so if round 2 has not been recorded."""
    round_2 = selection.get("round_2")
    if not round_2:
        return "Round 2 not recorded yet: `python benchmarks/gtsrb_selection.py` runs it after round 1."
    by_name = {record["name"]: record for record in records if record["config"]["dataset"] == "gtsrb-val"}
    seeds = round_2["seeds"]
    first = round_2["candidates"][0]["changes"]
    lines = ["| candidate | change from round 1's choice | epochs | "
             + " | ".join(f"seed {seed}" for seed in seeds) + " | held-out images right |",
             "|---|---|---:|" + "---:|" * (len(seeds) + 1)]
    for row in round_2["candidates"]:
        found = [by_name.get(name) for name in row["runs"]]
        change = {name: value for name, value in row["changes"].items() if first.get(name) != value}
        cells = [f"{100 * record['test_accuracy']:.2f}%" if record else "—" for record in found]
        right = (f"{sum(r['test_correct'] for r in found)} / {sum(r['test_samples'] for r in found)}"
                 if None not in found else "—")
        epochs = row["changes"].get("epochs", selection["base"]["epochs"])
        label = row["label"]
        if label == round_2["chosen"]:
            label, right = f"**{label}** (chosen)", f"**{right}**"
        lines.append(f"| {label} | {', '.join(recipe_parts('', change)) or '—'} | {epochs} | {' | '.join(cells)} "
                     f"| {right} |")
    lines += ["", f"Chosen: {round_2['rule']}."]
    return "\n".join(lines)


def _with_selection(table: Callable[[dict], str]) -> str:
    """``table(selection)`` of ``results/gtsrb_selection.json``, or a line saying it is not chosen yet."""
    selection = load_selection()
    return table(selection) if selection else "Not chosen yet: `python benchmarks/gtsrb_selection.py` runs the selection."


#: RESULTS.md, in order: (heading, what the table shows, table).
RESULTS_SECTIONS: list[tuple[str, str, Callable[[], str]]] = [
    ("Headline", "The README's table: the reference figure beside the course's best recorded run at seed 0.",
     README_BLOCKS["headline"]),
    ("The paper's Table 1: distorted MNIST",
     "Test error (%): ours, with the epochs and minutes of training, / the paper's (Jaderberg et al., 2015). "
     "Each cell is the longest seed-0 run of its row's recipe (the latest of equals): `full-localisation-lr` "
     "trains the localisation network at the full learning rate instead of a tenth, `window-28` makes the RTS "
     "transformer's output a 28x28 window of the 42x42 canvas, `amp=true` trains with bfloat16 mixed precision, "
     "`channels_last=true` "
     "in the channels-last memory format, `label_smoothing` with label smoothing "
     "([notebook 03](notebooks/03_distorted_mnist.ipynb) and its [appendix](notebooks/appendix_training_on_a_cpu.ipynb) "
     "explain them).",
     lambda: distorted_mnist_table(load_run_results())),
    ("Speed settings",
     "Each run with a speed setting (`--set amp=true`: bfloat16 mixed precision on the CPU, the transformer's "
     "grid and sampling kept in float32; `--set channels_last=true`) beside the longest run of the same recipe "
     "without either (Table 1's models), with the median seconds per epoch. They change the order of sums "
     "(so the rounding), not the model.",
     lambda: speed_table(load_run_results())),
    ("Regularisation",
     "Dropout before the classifier's last layer, batch norm after each convolution and label smoothing, each "
     "beside the same recipe without it. Errors only: the runs compared were often made on different days of "
     "a shared machine, whose speed varies more than these settings change it.",
     lambda: regularisation_table(load_run_results())),
    ("Seeds",
     "Runs of one recipe with other seeds (`--seed 1`: a new initialisation, batch order, training "
     "distortions and test set). The tables above compare recipes at seed 0.",
     lambda: seed_table(load_run_results())),
    ("What the models get wrong",
     "From `python -m stn_course errors` with a run's options. A digit touches the edge when a pixel of the "
     "image's outermost frame holds ink: the distortion most likely pushed part of it out of the image.",
     lambda: errors_table(load_error_results())),
    ("CIFAR-10",
     "Each run beside the accuracy the course material reports for its network, or the course's target for "
     "its own model ([notebook 04](notebooks/04_cifar10.ipynb)).",
     lambda: cifar10_table(load_run_results())),
    ("GTSRB: the recipe chosen on held-out tracks",
     "`python benchmarks/gtsrb_selection.py`: each candidate trained on `gtsrb-val`'s training tracks and "
     "evaluated on its held-out whole tracks, never on the test set "
     "([notebook 06](notebooks/06_traffic_signs.ipynb)).",
     lambda: _with_selection(lambda selection: selection_table(selection, load_run_results()))),
    ("GTSRB: round 2 of the selection, two seeds",
     "After round 1's final runs fell short of the 99.5% aimed at on the test set: round 1's choice against "
     "two changes to it, each trained at seeds 0 and 1 on `gtsrb-val` and evaluated on its held-out tracks.",
     lambda: _with_selection(lambda selection: round_2_table(selection, load_run_results()))),
    ("GTSRB: the chosen recipe, three seeds",
     "The chosen recipe on the whole training set with transformers and without, seeds 0-2: each run's "
     "last epoch's test accuracy (no epoch is picked by a test number).",
     lambda: _with_selection(lambda selection: final_table(selection, load_run_results()))),
    ("GTSRB: the jitter test sets",
     "`python -m stn_course jitter` with each final run's options: the official test set turned, zoomed and "
     "shifted 2, 3 and 4 times as far as the training jitter (`stn_course.gtsrb_jitter`, seed 0); test error, "
     "mean over the three seeds with their range.",
     lambda: _with_selection(lambda selection: jitter_table(load_jitter_results(selection)))),
    ("Every run",
     "Every training run with the command that repeats it. Training times were measured on a shared CPU, "
     "often while other work ran beside the training; the per-epoch seconds are in each JSON file.",
     results_table),
    ("The NumPy sampler against PyTorch",
     "`python benchmarks/sampler.py`, recorded in [`results/sampler_benchmark.json`](results/sampler_benchmark.json).",
     sampler_benchmark_table),
    ("The data pipeline and the transformer's cost",
     "`python benchmarks/pipeline.py`, recorded in "
     "[`results/pipeline_benchmark.json`](results/pipeline_benchmark.json). "
     "The tutorial's DataLoader runs with the tutorial's own worker count; \"the data alone\" draws an epoch's "
     "batches without a model. Each pipeline figure is a single measurement on a shared machine, so read "
     "ratios near 1 as \"about the same\". For the transformer's cost the models take turns over several "
     "rounds, and the table gives the median round's ratio with the range over rounds.",
     pipeline_benchmark_table),
]


def results_page() -> str:
    """``RESULTS.md``: every table of :data:`RESULTS_SECTIONS` under its heading, made from ``results/``."""
    parts = ["# Results", "",
             "Generated by `python -m stn_course report --update-readme` from [`results/`](results/), where "
             "each JSON file also records the machine, the library versions, the time and the per-epoch "
             "history. Do not edit by hand."]
    for heading, explanation, make in RESULTS_SECTIONS:
        parts += ["", f"## {heading}", "", explanation, "", make()]
    return "\n".join(parts) + "\n"


def readme_with_blocks(text: str) -> str:
    """``text`` (the README) with each generated block of :data:`README_BLOCKS` remade from ``results/``."""
    for name, make in README_BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"the README has no <!-- {name}:start --> ... <!-- {name}:end --> block")
        text = pattern.sub(lambda m: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def update_readme_results(readme: Path | None = None, results: Path | None = None) -> None:
    """Rewrite the README's generated blocks (:func:`readme_with_blocks`), ``RESULTS.md``
    (:func:`results_page`) and ``results/index.txt`` from ``results/``."""
    readme = readme or repo_root() / "README.md"
    readme.write_text(readme_with_blocks(readme.read_text()))
    (results or repo_root() / "RESULTS.md").write_text(results_page())
    write_results_index()  # the list a copy without the repository downloads (stn_course.course_files)


TABLE1_COLUMNS = {"R": "rot-mnist", "RTS": "rts-mnist", "P": "proj-mnist", "E": "elastic-mnist", "TC": "clutter-mnist"}
#: Table 1's rows: (model, variant, settings changed by hand). A row other than the default holds
#: the runs of that change to the recipe, beside the paper's figures for the same model.
TABLE1_ROWS: list[tuple[str, str, dict]] = [
    ("cnn", "", {}), ("cnn", "", {"amp": True}), ("cnn", "", {"amp": True, "channels_last": True}),
    ("cnn", "", {"amp": True, "channels_last": True, "label_smoothing": 0.1}),
    ("st-cnn-aff", "", {}), ("st-cnn-aff", "", {"amp": True}),
    ("st-cnn-aff", "full-localisation-lr", {}), ("st-cnn-aff", "full-localisation-lr", {"amp": True}),
    ("st-cnn-aff", "full-localisation-lr", {"amp": True, "channels_last": True}),
    ("st-cnn-aff", "full-localisation-lr", {"amp": True, "channels_last": True, "label_smoothing": 0.1}),
    ("st-cnn-aff", "window-28", {}), ("st-cnn-aff", "window-28", {"amp": True}),
    ("st-cnn-aff", "window-28", {"amp": True, "channels_last": True}),
    ("st-cnn-aff", "window-28", {"amp": True, "channels_last": True, "label_smoothing": 0.1}),
    ("st-cnn-proj", "", {}), ("st-cnn-tps", "", {})]


def longest_runs(records: list[dict], seed: int = 0) -> dict[tuple[str, str, str], dict]:
    """The chosen record of ``seed`` for each (dataset, model, recipe label): the run with the
    most epochs, the latest of equals (a shorter run of a recipe, say for a comparison at a
    smaller budget, does not replace its longer one). The label (:attr:`RunConfig.recipe`)
    is ``""`` for the default recipe. The course's tables compare recipes at one seed;
    :func:`seed_table` shows what another seed changes."""
    chosen: dict[tuple[str, str, str], dict] = {}
    for record in sorted(records, key=lambda r: (r["epochs"], r["finished_at"])):
        config = config_of(record)
        if config.seed == seed:
            chosen[(config.dataset, config.model, config.recipe)] = record
    return chosen


def seed_table(records: list[dict]) -> str:
    """Runs that differ only in their seed (a new initialisation, batch order, training
    distortions and, for distorted MNIST, test set), as Markdown: each seed's test error, their
    mean and spread, for every recipe and number of epochs run with more than one seed."""
    by_run: dict[tuple, dict[int, dict]] = {}
    for record in sorted(records, key=lambda r: r["finished_at"]):
        config = config_of(record)
        by_run.setdefault((config.dataset, config.model, config.recipe, config.epochs), {})[config.seed] = record
    lines = ["| dataset | model | recipe | epochs | test error by seed | mean | spread |", "|---|---|---|---|---|---|---|"]
    for (dataset, model, recipe, epochs), seeds in sorted(by_run.items()):
        if len(seeds) < 2:
            continue
        errors = {seed: seeds[seed]["test_error_percent"] for seed in sorted(seeds)}
        by_seed = ", ".join(f"{error:.2f}% (seed {seed})" for seed, error in errors.items())
        spread = max(errors.values()) - min(errors.values())
        lines.append(f"| {dataset} | {model} | {recipe or 'default'} | {epochs} | {by_seed} "
                     f"| {statistics.mean(errors.values()):.2f}% | {spread:.2f} points |")
    return "\n".join(lines)


def distorted_mnist_table(records: list[dict]) -> str:
    """Table 1 as Markdown: our test error (%) beside the paper's, and our training time.

    One row per entry of :data:`TABLE1_ROWS`; cells read ``ours (epochs, minutes) / paper``,
    and a dash marks a run not recorded in ``records`` yet.
    """
    chosen = longest_runs(records)
    header = "| model | " + " | ".join(TABLE1_COLUMNS) + " |"
    lines = [header, "|---" * (len(TABLE1_COLUMNS) + 1) + "|"]
    for model, variant, changes in TABLE1_ROWS:
        paper = PAPER_TABLE1[model]
        parts = recipe_parts(variant, changes)
        cells = []
        for column, dataset in TABLE1_COLUMNS.items():
            record = chosen.get((dataset, model, "_".join(parts)))
            ours = (f"**{record['test_error_percent']:.2f}** ({record['epochs']} ep, "
                    f"{record['seconds_total'] / 60:.0f} min)") if record else "—"
            cells.append(f"{ours} / {paper[column]}" if column in paper else ours)
        row = f"{model} ({', '.join(parts)})" if parts else model
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: RunConfig fields that change how fast a run computes, not what it computes (up to rounding)
SPEED_FIELDS = ("amp", "channels_last")
#: RunConfig fields that regularise the classifier without changing its size: dropout and batch
#: norm in its layers, label smoothing in its loss
REGULARISATION_FIELDS = ("dropout", "batchnorm", "label_smoothing")


def settings_table(records: list[dict], setting_fields: Sequence[str], heading: str, timed: bool = True) -> str:
    """Each run of a Table 1 model (:data:`TABLE1_ROWS`, the appendix's subject) that sets one of
    ``setting_fields`` by hand beside the chosen run (:func:`longest_runs`) of the same recipe
    without any of them, as Markdown: both errors and, if ``timed``, the median seconds per
    epoch of each and their ratio. ``heading`` names the settings column. A run whose recipe
    without the settings was never run is left out, and so, if ``timed``, is a pair trained
    with different numbers of threads (their seconds would measure the threads)."""
    table1_models = {model for model, _, _ in TABLE1_ROWS}
    chosen = {key: record for key, record in longest_runs(records).items() if key[1] in table1_models}
    timing = " s/epoch without → with | speed-up |" if timed else ""
    lines = [f"| dataset | model | recipe | {heading} |{timing} test error without → with |",
             "|---|---|---|---|" + ("---|---|" if timed else "") + "---|"]
    for (dataset, model, recipe), record in sorted(chosen.items()):
        config = config_of(record)
        settings = {name: value for name, value in config.changes.items() if name in setting_fields}
        if not settings:
            continue
        plain = recipe_config(config.dataset, config.model, config.epochs, config.seed, config.variant)
        base_recipe = replace(config, **{name: getattr(plain, name) for name in settings}).recipe
        base = chosen.get((dataset, model, base_recipe))
        if base is None or (timed and _threads(base) != _threads(record)):
            continue
        cells = [dataset, model, base_recipe or "default", ", ".join(recipe_parts("", settings))]
        if timed:
            seconds = [statistics.median(r["seconds_per_epoch"]) for r in (base, record)]
            cells += [f"{seconds[0]:.0f} → {seconds[1]:.0f}", f"**{seconds[0] / seconds[1]:.2f}x**"]
        cells.append(f"{base['test_error_percent']:.2f}% ({base['epochs']} ep) → "
                     f"{record['test_error_percent']:.2f}% ({record['epochs']} ep)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _threads(record: dict) -> int | None:
    """The torch threads a run trained with (None in records older than the field)."""
    return record.get("machine", {}).get("torch_threads")


def speed_table(records: list[dict]) -> str:
    """Each run that sets a speed field (:data:`SPEED_FIELDS`: bfloat16 mixed precision,
    channels-last memory format) beside the same recipe without any (:func:`settings_table`)."""
    return settings_table(records, SPEED_FIELDS, "speed settings")


def regularisation_table(records: list[dict]) -> str:
    """Each run that regularises the classifier (:data:`REGULARISATION_FIELDS`: dropout, batch
    norm, label smoothing) beside the same recipe without it (:func:`settings_table`), errors
    only: the runs compared were often made on different days of a shared machine, whose
    speed varies more than these settings change it."""
    return settings_table(records, REGULARISATION_FIELDS, "regularisation", timed=False)


def selection_table(selection: dict, records: Sequence[dict]) -> str:
    """The validation table that chose the GTSRB recipe, as Markdown: per candidate of
    ``selection`` (``results/gtsrb_selection.json``, written by ``benchmarks/gtsrb_selection.py``)
    its change from the base recipe, model, epochs and accuracy on ``gtsrb-val``'s held-out
    tracks, from its run's record among ``records`` (:func:`load_run_results`; a dash until it
    has run); the chosen candidate in bold, then the base recipe and the rule. No training times:
    the candidates ran beside other work, so their seconds are not timings."""
    by_name = {record["name"]: record for record in records if record["config"]["dataset"] == "gtsrb-val"}
    lines = ["| candidate | change from the base | model | epochs | validation accuracy |",
             "|---|---|---|---:|---:|"]
    for row in selection["candidates"]:
        record = by_name.get(row["run"])
        change = ", ".join(recipe_parts("", row["changes"])) or "—"
        accuracy = f"{100 * record['test_accuracy']:.2f}%" if record else "—"
        epochs = record["epochs"] if record else row["changes"].get("epochs", selection["base"]["epochs"])
        label = f"**{row['label']}** (chosen)" if row["run"] == selection["chosen"] else row["label"]
        if row["run"] == selection["chosen"]:
            accuracy = f"**{accuracy}**"
        lines.append(f"| {label} | {change} | `{row['model']}` | {epochs} | {accuracy} |")
    base = selection["base"]
    settings = ", ".join(recipe_parts("", base["settings"]))
    lines += ["", f"Base: `{base['model']}`, {base['epochs']} epochs, {settings}. Chosen: {selection['rule']}."]
    return "\n".join(lines)
