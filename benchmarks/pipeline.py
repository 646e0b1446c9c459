"""Two measurements, each made in one run on one machine (results/pipeline_benchmark.json):

1. The course's tensor pipeline (uint8 tensors, batches by indexing, distortions as batched
   ``grid_sample``) against the PyTorch STN tutorial's pipeline (torchvision MNIST + per-sample
   PIL transforms + DataLoader), each feeding the same model for one epoch: seconds per
   epoch and test accuracy. On MNIST the tutorial's transforms are just ``ToTensor``, with
   two models: the tutorial's own network (``tutorial-stn``: small, so the data pipeline is
   most of an epoch) and the course's ST-CNN (``st-cnn-aff``: the model dominates on a CPU).
   On RTS MNIST (42x42) the tutorial way is torchvision's ``Pad`` + ``RandomAffine`` on
   every PIL image, the course's is :func:`stn_course.distortions.random_rts` on the batch;
   both are tested on the course's fixed RTS test set. The tutorial's DataLoader has its
   own ``num_workers=4``. Each pipeline is also timed alone (batches drawn, no model), which
   is what the pipeline itself costs; on a small CPU the model's own time bounds the
   speed-up of a whole training epoch.
2. The spatial transformer's time overhead: seconds per training epoch of ST-CNN (affine)
   over the CNN of the same size, on RTS MNIST, for a transformer that keeps the 42x42
   size and for one that samples a 28x28 window; the models take turns so that the shared
   machine's slow spells hit them all (the median of the turns' ratios).

    python benchmarks/pipeline.py            # full: whole epochs (about 15 minutes on 2 CPU cores, alone)
    python benchmarks/pipeline.py --batches 100   # a shorter estimate

Set STN_COURSE_DATA if MNIST is not under data/.
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch
import torch.nn.functional as F

from stn_course.data import load_mnist
from stn_course.distortions import distorted_mnist_test, distortion
from stn_course.loader import BatchLoader
from stn_course.names import ModelOptions
from stn_course.registry import build_classifier
from stn_course.results import save_result
from stn_course.train import evaluate, parameter_groups
from stn_course.utils import data_root, set_seed

BATCH = 64
#: (dataset, model) pairs compared; the key in the results file is "<dataset>/<model>"
PIPELINE_RUNS = (("mnist", "tutorial-stn"), ("mnist", "st-cnn-aff"), ("rts-mnist", "tutorial-stn"))


def draw_batches(batches, limit: int | None) -> tuple[float, int]:
    """Draw batches from ``batches`` without training; returns (seconds, batches done)."""
    done, started = 0, time.perf_counter()
    for _ in batches:
        done += 1
        if limit is not None and done >= limit:
            break
    return time.perf_counter() - started, done


def course_loader(dataset: str) -> BatchLoader:
    """The course's training pipeline: uint8 tensors, batches by indexing, RTS distortion on the batch."""
    augment = None if dataset == "mnist" else distortion("rts")
    return BatchLoader(load_mnist(train=True), BATCH, shuffle=True, augment=augment, seed=0)


def training_step(model: torch.nn.Module):
    """A function that trains ``model`` on one batch (AdamW, the localisation network at a tenth)."""
    optimizer = torch.optim.AdamW(parameter_groups(model, 1e-3), lr=1e-3)
    model.train()

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()

    return step


def train_batches(model, batches, limit: int | None) -> tuple[float, int]:
    """Train on ``batches`` (an iterable of (images, labels)); returns (seconds, batches done)."""
    step = training_step(model)
    done, started = 0, time.perf_counter()
    for images, labels in batches:
        step(images, labels)
        done += 1
        if limit is not None and done >= limit:
            break
    return time.perf_counter() - started, done


def endless(loader):
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def tutorial_transform(dataset: str):
    """The per-sample PIL transforms a reader of the PyTorch tutorial would write, without
    Normalize (the course's models normalise after their transformer)."""
    from torchvision import transforms

    if dataset == "mnist":
        return transforms.ToTensor()
    # RTS: rotation ±45°, scale 0.7-1.2, a random position in a 42x42 canvas (the digit
    # is padded by 7 pixels, then moved by up to a sixth of the canvas).
    return transforms.Compose([
        transforms.Pad(7),
        transforms.RandomAffine(45, translate=(1 / 6, 1 / 6), scale=(0.7, 1.2),
                                interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.ToTensor(),
    ])


def tutorial_loader(dataset: str, num_workers: int) -> torch.utils.data.DataLoader:
    """The PyTorch STN tutorial's training pipeline: torchvision's MNIST, per-sample PIL
    transforms, a shuffling DataLoader."""
    from torchvision import datasets

    train = datasets.MNIST(str(data_root()), train=True, download=True, transform=tutorial_transform(dataset))
    return torch.utils.data.DataLoader(train, batch_size=BATCH, shuffle=True, num_workers=num_workers)


def fixed_test_set(dataset: str) -> BatchLoader:
    """The course's test set for ``dataset`` (RTS: fixed by seed 0)."""
    test = load_mnist(train=False) if dataset == "mnist" else distorted_mnist_test("rts", seed=0)
    return BatchLoader(test, 1000)


def pipeline_comparison(dataset: str, model_name: str, test: BatchLoader, limit: int | None,
                        num_workers: int) -> dict:
    results = {}
    print(f"{dataset}, model {model_name}:")
    for name in ("tutorial DataLoader + PIL", "course tensor pipeline"):
        def make_loader():
            return tutorial_loader(dataset, num_workers) if name.startswith("tutorial") else course_loader(dataset)

        set_seed(0)
        data_seconds, data_done = draw_batches(make_loader(), limit)
        set_seed(0)
        model = build_classifier(model_name, test.data.image_shape, (0.1307,), (0.3081,))
        batches = make_loader()
        seconds, done = train_batches(model, batches, limit)
        _, correct, total = evaluate(model, test)
        results[name] = {"seconds": round(seconds, 2), "batches": done,
                         "seconds_per_epoch": round(seconds * len(batches) / done, 2),
                         "data_seconds_per_epoch": round(data_seconds * len(batches) / data_done, 2),
                         "test_accuracy": correct / total}
        print(f"{name:>28}: {seconds:7.1f} s for {done} batches "
              f"({results[name]['seconds_per_epoch']:.1f} s/epoch; the data alone "
              f"{results[name]['data_seconds_per_epoch']:.1f} s/epoch), test accuracy {100 * correct / total:.2f}%")
    tutorial, course = results.values()
    speedup = tutorial["seconds_per_epoch"] / course["seconds_per_epoch"]
    data_speedup = tutorial["data_seconds_per_epoch"] / course["data_seconds_per_epoch"]
    print(f"{'speed-up':>28}: {speedup:.2f}x per training epoch, {data_speedup:.0f}x for the data alone")
    return {"dataset": dataset, "model": model_name, "runs": results, "speedup": round(speedup, 3),
            "data_speedup": round(data_speedup, 1), "num_workers": num_workers}


#: the models timed for the overhead: label -> (model name, build_classifier options)
OVERHEAD_MODELS = {"cnn": ("cnn", {}), "st-cnn-aff": ("st-cnn-aff", {}),
                   "st-cnn-aff, 28x28 window": ("st-cnn-aff", {"window": 28})}


def stn_overhead(limit: int | None, rounds: int) -> dict:
    """Seconds per training epoch of the CNN and the ST-CNNs on RTS MNIST (batch 128): the
    ST-CNN whose transformer keeps the 42x42 size, and the one that samples a 28x28 window.

    The models take turns, ``rounds`` times, each training ``limit / rounds`` batches per
    turn (the order reverses every round), so a slow spell of a shared machine hits them
    all; each ST-CNN's ratio to the CNN is the median of the rounds' ratios, with their range.
    """
    train = load_mnist(train=True)
    steps, batches = {}, {}
    for name, (model_name, options) in OVERHEAD_MODELS.items():
        set_seed(0)
        steps[name] = training_step(build_classifier(model_name, (1, 42, 42), train.mean, train.std,
                                                       options=ModelOptions(**options)))
        loader = BatchLoader(train, 128, shuffle=True, augment=distortion("rts"), seed=0)
        batches[name] = endless(loader)
        for images, labels in itertools.islice(batches[name], 3):  # warm-up, not timed
            steps[name](images, labels)
    epoch_batches = len(loader)
    per_round = max(1, (limit or epoch_batches) // rounds)
    seconds = {name: [] for name in OVERHEAD_MODELS}
    for round_index in range(rounds):
        order = list(OVERHEAD_MODELS) if round_index % 2 == 0 else list(reversed(OVERHEAD_MODELS))
        for name in order:
            started = time.perf_counter()
            for images, labels in itertools.islice(batches[name], per_round):
                steps[name](images, labels)
            seconds[name].append(time.perf_counter() - started)
    runs, ratios = {}, {}
    for name, times in seconds.items():
        runs[name] = {"seconds": round(sum(times), 2), "batches": per_round * rounds,
                      "seconds_per_epoch": round(statistics.median(times) * epoch_batches / per_round, 2)}
        line = f"{name:>28}: {runs[name]['seconds_per_epoch']:.1f} s/epoch on RTS MNIST (median turn)"
        if name != "cnn":
            turns = [st / cnn for st, cnn in zip(times, seconds["cnn"])]
            ratios[name] = {"median": round(statistics.median(turns), 3), "turns": [round(r, 3) for r in turns]}
            line += f", {ratios[name]['median']:.3f}x the CNN's ({min(turns):.3f}-{max(turns):.3f} over {rounds} rounds)"
        print(line)
    return {"runs": runs, "ratios": ratios, "ratio": ratios["st-cnn-aff"]["median"], "rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=None, help="batches per measurement (default: a whole epoch)")
    parser.add_argument("--num-workers", type=int, default=4,
                        help="DataLoader workers for the tutorial pipeline (default: the tutorial's 4)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="turns each model takes in the overhead measurement (default 5)")
    args = parser.parse_args()
    if args.rounds < 1 or (args.batches is not None and args.batches < args.rounds):
        parser.error("--rounds must be at least 1 and at most --batches")
    tests = {dataset: fixed_test_set(dataset) for dataset in {dataset for dataset, _ in PIPELINE_RUNS}}
    payload = {
        "batch_size": BATCH,
        "batches_per_measurement": args.batches,
        "pipeline": {f"{dataset}/{model}": pipeline_comparison(dataset, model, tests[dataset], args.batches,
                                                               args.num_workers)
                     for dataset, model in PIPELINE_RUNS},
        "stn_overhead": stn_overhead(args.batches, args.rounds),
    }
    command = "python benchmarks/pipeline.py" + (f" --batches {args.batches}" if args.batches else "") \
        + (f" --num-workers {args.num_workers}" if args.num_workers != 4 else "") \
        + (f" --rounds {args.rounds}" if args.rounds != 5 else "")
    print("written to", save_result("pipeline_benchmark", payload, command=command))


if __name__ == "__main__":
    main()
