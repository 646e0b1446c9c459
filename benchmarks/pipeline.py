"""Two measurements, each made in one run on one machine (results/pipeline_benchmark.json):

1. The course's tensor pipeline (uint8 tensors, batches by indexing) against the PyTorch
   STN tutorial's pipeline (torchvision MNIST + per-sample PIL ``ToTensor`` + DataLoader),
   each feeding the same model for one epoch of MNIST: seconds per epoch and test accuracy.
   Two models: the tutorial's own network (``tutorial-stn``: small, so the data pipeline
   is most of an epoch) and the course's ST-CNN (``st-cnn-aff``: the model dominates on a CPU).
2. The spatial transformer's time overhead: seconds per training epoch of ST-CNN (affine)
   over the CNN of the same size, on RTS MNIST.

    python benchmarks/pipeline.py            # full: whole epochs (about 15 minutes on 2 CPU cores, alone)
    python benchmarks/pipeline.py --batches 100   # a shorter estimate

Set STN_COURSE_DATA if MNIST is not under data/.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from stn_course.data import BatchLoader, load_mnist
from stn_course.distortions import distortion
from stn_course.models import build_classifier, parameter_groups
from stn_course.train import evaluate
from stn_course.utils import data_root, save_result, set_seed

BATCH = 64
PIPELINE_MODELS = ("tutorial-stn", "st-cnn-aff")


def train_batches(model, batches, limit: int | None) -> tuple[float, int]:
    """Train on ``batches`` (an iterable of (images, labels)); returns (seconds, batches done)."""
    optimizer = torch.optim.AdamW(parameter_groups(model, 1e-3), lr=1e-3)
    model.train()
    done, started = 0, time.perf_counter()
    for images, labels in batches:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()
        done += 1
        if limit is not None and done >= limit:
            break
    return time.perf_counter() - started, done


def tutorial_loader(num_workers: int) -> torch.utils.data.DataLoader:
    """The PyTorch STN tutorial's training pipeline, without Normalize (the course's models
    normalise after their transformer)."""
    from torchvision import datasets, transforms

    dataset = datasets.MNIST(str(data_root()), train=True, download=True, transform=transforms.ToTensor())
    return torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=num_workers)


def pipeline_comparison(model_name: str, test: BatchLoader, limit: int | None, num_workers: int) -> dict:
    results = {}
    print(f"model {model_name}:")
    for name in ("tutorial DataLoader + PIL", "course tensor pipeline"):
        set_seed(0)
        model = build_classifier(model_name, (1, 28, 28), (0.1307,), (0.3081,))
        if name.startswith("tutorial"):
            batches = tutorial_loader(num_workers)
        else:
            batches = BatchLoader(load_mnist(train=True), BATCH, shuffle=True, seed=0)
        seconds, done = train_batches(model, batches, limit)
        _, correct, total = evaluate(model, test)
        results[name] = {"seconds": round(seconds, 2), "batches": done,
                         "seconds_per_epoch": round(seconds * len(batches) / done, 2),
                         "test_accuracy": correct / total}
        print(f"{name:>28}: {seconds:7.1f} s for {done} batches "
              f"({results[name]['seconds_per_epoch']:.1f} s/epoch), test accuracy {100 * correct / total:.2f}%")
    tutorial, course = results.values()
    speedup = tutorial["seconds_per_epoch"] / course["seconds_per_epoch"]
    print(f"{'speed-up':>28}: {speedup:.2f}x")
    return {"runs": results, "speedup": round(speedup, 3), "num_workers": num_workers}


def stn_overhead(limit: int | None) -> dict:
    train = load_mnist(train=True)
    results = {}
    for model_name in ("cnn", "st-cnn-aff"):
        set_seed(0)
        model = build_classifier(model_name, (1, 42, 42), train.mean, train.std)
        loader = BatchLoader(train, 128, shuffle=True, augment=distortion("rts"), seed=0)
        seconds, done = train_batches(model, loader, limit)
        results[model_name] = {"seconds": round(seconds, 2), "batches": done,
                               "seconds_per_epoch": round(seconds * len(loader) / done, 2)}
        print(f"{model_name:>28}: {results[model_name]['seconds_per_epoch']:.1f} s/epoch on RTS MNIST")
    ratio = results["st-cnn-aff"]["seconds_per_epoch"] / results["cnn"]["seconds_per_epoch"]
    print(f"{'ST-CNN / CNN':>28}: {ratio:.3f}")
    return {"runs": results, "ratio": round(ratio, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=None, help="batches per measurement (default: a whole epoch)")
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers for the tutorial pipeline")
    args = parser.parse_args()
    test = BatchLoader(load_mnist(train=False), 1000)
    payload = {
        "batch_size": BATCH,
        "batches_per_measurement": args.batches,
        "pipeline": {model: pipeline_comparison(model, test, args.batches, args.num_workers)
                     for model in PIPELINE_MODELS},
        "stn_overhead": stn_overhead(args.batches),
    }
    command = "python benchmarks/pipeline.py" + (f" --batches {args.batches}" if args.batches else "")
    print("written to", save_result("pipeline_benchmark", payload, command=command))


if __name__ == "__main__":
    main()
