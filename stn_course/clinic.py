"""When a spatial transformer goes wrong: the usual mistakes as code, each one an option of
:class:`LearnersTransformer` (an affine transformer written the way the issue trackers of the
well-known implementations show them), the seven cases of the clinic (:data:`CASES`): for
each, the runs that show the symptom and its fix, and the short training run behind each
(:func:`train_case`, notebook 08). :mod:`stn_course.health` diagnoses them;
``benchmarks/clinic_runs.py`` records them in ``results/clinic_<case>.json``.

The mistakes:

* ``identity_init=False``: the localisation's last layer keeps PyTorch's random initialisation,
  so θ starts far from "do nothing" (a magnified, often mirrored patch);
* ``normalise_first``: the image is normalised *before* sampling, so zero padding is not the
  background (a grey frame, pytorch/tutorials#1117);
* ``align_corners=(grid, sample)`` with ``grid != sample``: ``affine_grid`` and ``grid_sample``
  disagree, and the identity scales the image by W/(W-1) about the centre;
* ``integer_theta``: θ written into an integer tensor, truncated where it is written (and cut
  off from the gradient: the localisation never learns);
* ``bound``: θ = identity + bound * tanh(raw), a bounded θ (not a mistake: a choice, compared
  with the unbounded one).
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import CourseError
from .files import write_atomically
from .health import health_check
from .models import ConvClassifier, Normalize, localisation_net
from .recipes import DATASETS, DatasetSplits
from .utils import checkpoint_dir, recorded_results_dir, set_seed

IDENTITY_PARAMS = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class LearnersTransformer(nn.Module):
    """An affine spatial transformer with the usual mistakes as options (see the module).

    Like the course's :class:`~stn_course.models.SpatialTransformer` it stores the θ of its last
    forward in ``last_theta`` ``(N, 2, 3)``, which is all :func:`stn_course.health.health_check`
    needs. Its input is ``(N, C, H, W)`` in [0, 1] (or normalised, with ``normalise_first``).
    """

    def __init__(self, input_shape: Sequence[int], *, identity_init: bool = True, bound: float | None = None,
                 align_corners: tuple[bool, bool] = (False, False), integer_theta: bool = False) -> None:
        super().__init__()
        self.localisation = localisation_net(input_shape, 6)
        self.bound, self.corners, self.integer_theta = bound, tuple(align_corners), integer_theta
        head = self.localisation[-1]
        if identity_init:
            nn.init.zeros_(head.weight)
            with torch.no_grad():  # a bounded θ is the identity at raw = 0
                head.bias.copy_(torch.zeros(6) if bound else torch.tensor(IDENTITY_PARAMS))
        self.last_theta: torch.Tensor | None = None

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """θ ``(N, 2, 3)`` for images ``x``, with this transformer's mistakes."""
        params = self.localisation(x)
        if self.bound:
            params = params.new_tensor(IDENTITY_PARAMS) + self.bound * torch.tanh(params)
        if self.integer_theta:
            theta = torch.zeros(len(x), 2, 3, dtype=torch.long, device=x.device)
            theta[:] = params.view(-1, 2, 3)  # truncated toward zero, and no gradient flows back
            return theta
        return params.view(-1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.theta(x)
        self.last_theta = theta.detach()
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=self.corners[0])
        return F.grid_sample(x, grid, align_corners=self.corners[1])

    def extra_repr(self) -> str:
        return f"bound={self.bound}, align_corners={self.corners}, integer_theta={self.integer_theta}"


class ClinicNet(nn.Module):
    """A :class:`LearnersTransformer` in front of the course's CNN (:class:`ConvClassifier`).

    With ``normalise_first`` the image is normalised before the transformer samples it (the
    mistake) and the classifier then takes it as it comes; else the classifier normalises what
    the transformer sampled (the course's order). The other keywords go to the transformer.
    """

    def __init__(self, input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
                 num_classes: int = 10, *, normalise_first: bool = False, hidden: int = 64, **mistakes) -> None:
        super().__init__()
        channels = len(mean)
        self.normalise_first = Normalize(mean, std) if normalise_first else nn.Identity()
        self.transformer = LearnersTransformer(input_shape, **mistakes)
        after = ([0.0] * channels, [1.0] * channels) if normalise_first else (mean, std)
        self.classifier = ConvClassifier(input_shape, *after, hidden=hidden, num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.transformer(self.normalise_first(x)))


@dataclass(frozen=True)
class Case:
    """One case of the clinic: a dataset, and its runs, each a label → the :class:`ClinicNet`
    options and training settings (``lr``, ``localisation_lr_scale``, ``max_grad_norm``)."""

    title: str
    dataset: str
    runs: dict[str, dict] = field(default_factory=dict)


#: the course's settings of a short run: AdamW 2e-3, localisation 10x slower, gradients clipped at 5
SOUND = {"lr": 2e-3, "localisation_lr_scale": 0.1, "max_grad_norm": 5.0}
#: the localisation's learning rate 25x the classifier's (5e-2), unclipped: θ blows up in a few dozen steps
TOO_HIGH = {"lr": 2e-3, "localisation_lr_scale": 25.0, "max_grad_norm": None}
#: the seven cases, each with its broken run(s) and the fix (the runs' labels say which)
CASES: dict[str, Case] = {
    "lr-too-high": Case("the localisation's learning rate far too high", "rts-mnist",
                        {"broken": TOO_HIGH, "fixed": SOUND}),
    "no-identity-init": Case("no identity initialisation", "rts-mnist", {
        "broken": {**SOUND, "identity_init": False}, "fixed": SOUND}),
    "normalise-first": Case("normalising before sampling", "rts-mnist", {
        "broken": {**SOUND, "normalise_first": True}, "fixed": SOUND}),
    "align-corners": Case("align_corners different in affine_grid and grid_sample", "mnist", {
        "broken": {**SOUND, "align_corners": (False, True)}, "fixed": SOUND}),
    "integer-theta": Case("θ written into an integer tensor", "rts-mnist", {
        "broken": {**SOUND, "integer_theta": True}, "fixed": SOUND}),
    "bounded-theta": Case("bounded θ (tanh) against unbounded, at a far too high localisation rate", "rts-mnist", {
        "unbounded": TOO_HIGH, "bounded": {**TOO_HIGH, "bound": 0.5}}),
    "nothing-to-undo": Case("a transformer with nothing to undo (plain MNIST)", "mnist", {"as-is": SOUND}),
}
#: the keys of a run's settings that are training settings, not :class:`ClinicNet` options
TRAINING_SETTINGS = ("lr", "localisation_lr_scale", "max_grad_norm")


def build_run(case: str, label: str, input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
              num_classes: int = 10, settings: dict | None = None
              ) -> tuple[ClinicNet, torch.optim.Optimizer, float | None]:
    """The model, its optimiser (AdamW; the localisation in its own group) and its gradient
    clipping for run ``label`` of ``case``, or for ``settings`` of your own (the same keys)."""
    settings = CASES[case].runs[label] if settings is None else settings
    options = {key: value for key, value in settings.items() if key not in TRAINING_SETTINGS}
    model = ClinicNet(input_shape, mean, std, num_classes, **options)
    lr = settings["lr"]
    localisation = list(model.transformer.localisation.parameters())
    rest = [p for name, p in model.named_parameters() if not name.startswith("transformer.localisation.")]
    optimizer = torch.optim.AdamW([{"params": rest, "lr": lr, "name": "classifier"},
                                   {"params": localisation, "lr": lr * settings["localisation_lr_scale"],
                                    "name": "localisation"}], lr=lr)
    return model, optimizer, settings["max_grad_norm"]


# --- The short runs: each case's runs trained on the same batches, their health logged as they train ---

BATCH = 64
#: the recorded runs' budget (``results/clinic_<case>.json``): 400 AdamW steps of 64 images drawn from
#: 10,000 training images, tested on 1000; about 20-50 s a run on a 2-core CPU
FULL_BUDGET = {"steps": 400, "train_limit": 10_000, "test_limit": 1000, "log_every": 25, "seed": 0}
#: quick mode's (the tests): a second or two a run, enough to see the mechanics, not the symptoms
QUICK_BUDGET = {"steps": 20, "train_limit": 512, "test_limit": 256, "log_every": 5, "seed": 0}
PROBE = 256  # test images the health check reads while a run trains
SHOWN = 16  # test images whose θ is kept at the end


def case_data(case: str, budget: dict) -> DatasetSplits:
    """The case's dataset at the budget's limits (the same test images as its record)."""
    return DATASETS[CASES[case].dataset](budget["train_limit"], budget["test_limit"], budget["seed"])


def recorded_test_images(record: dict, count: int = 8) -> tuple[torch.Tensor, DatasetSplits]:
    """The first ``count`` test images ``(count, C, H, W)`` in [0, 1] of a clinic record's dataset,
    drawn at the record's budget (the images its ``theta_first_test_images`` belong to), and the
    dataset (for its mean and std)."""
    budget = {**record["budget"], "train_limit": BATCH}  # the test images do not depend on the training limit
    splits = case_data(record["case"], budget)
    return test_images(splits, count)[0], splits


def training_batch(splits: DatasetSplits, step: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training batch of ``step`` ``(64, C, H, W)`` in [0, 1]: drawn (and distorted) with a
    generator seeded by the step, so that every run of a case sees the same batches, and a run
    resumed from its checkpoint is the same run."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    index = torch.randint(len(splits.train), (BATCH,), generator=generator)
    images = splits.train.images[index].float().div_(255.0)
    if splits.train_augment is not None:
        images = splits.train_augment(images, generator)
    return images, splits.train.labels[index]


def test_images(splits: DatasetSplits, count: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` test images ``(N, C, H, W)`` in [0, 1] and their labels."""
    return splits.test.images[:count].float().div(255.0), splits.test.labels[:count]


def finite(value):
    """A number, or a tuple of them, with NaN and inf as None (valid JSON)."""
    if isinstance(value, tuple):
        return [finite(v) for v in value]
    return value if not isinstance(value, float) or math.isfinite(value) else None


def health_reading(model: nn.Module, probe: torch.Tensor) -> dict:
    """What the health check reads on the probe images, for the log (θ may already be NaN)."""
    blown_up = {"zoom": None, "outside": 1.0, "distance": None}
    if not all(p.isfinite().all() for p in model.parameters()):
        return blown_up
    try:
        report = health_check(model, probe)
    except (RuntimeError, ValueError):  # e.g. a grid of NaN after θ overflowed
        return blown_up
    return {"zoom": finite(report.zoom[2]), "outside": report.outside, "distance": finite(report.distance[2])}


def _resume(path: Path, identity: dict, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The run's progress from its checkpoint (if it belongs to this run), else a fresh start."""
    fresh = {"step": 0, "log": [], "seconds": 0.0}
    if not path.exists():
        return fresh
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("identity") != identity:
        print(f"  {path.name} belongs to another run ({state.get('identity')}): starting afresh")
        return fresh
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    print(f"  resuming at step {state['step']} from {path.name}")
    return {key: state[key] for key in fresh}


def _save(path: Path, identity: dict, model: nn.Module, optimizer: torch.optim.Optimizer, progress: dict) -> None:
    state = {"identity": identity, "model": model.state_dict(), "optimizer": optimizer.state_dict(), **progress}
    write_atomically(path, lambda tmp: torch.save(state, tmp))


def train_run(case: str, label: str, splits: DatasetSplits, budget: dict, checkpoint_every: int = 100,
              settings: dict | None = None) -> dict:
    """Train (or resume) run ``label`` of ``case`` (or ``settings`` of your own, see :func:`build_run`)
    for ``budget["steps"]`` steps, logging the loss and the health readings every ``log_every``
    steps and checkpointing every ``checkpoint_every`` (``clinic_<case>_<label>.pt`` in
    :func:`stn_course.utils.checkpoint_dir`); returns its record."""
    set_seed(budget["seed"])
    settings = CASES[case].runs[label] if settings is None else settings
    model, optimizer, clip = build_run(case, label, splits.test.image_shape, splits.train.mean, splits.train.std,
                                       num_classes=len(splits.train.classes), settings=settings)
    identity = {"case": case, "label": label, "settings": repr(settings), **budget}
    path = checkpoint_dir() / f"clinic_{case}_{label}.pt"
    progress = _resume(path, identity, model, optimizer)
    probe = test_images(splits, PROBE)[0]
    losses: list[float] = []
    started = time.perf_counter() - progress["seconds"]
    while progress["step"] < budget["steps"]:
        images, labels = training_batch(splits, progress["step"], budget["seed"])
        model.train()
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        losses.append(loss.item())
        progress["step"] += 1
        last = progress["step"] == budget["steps"]
        if progress["step"] % budget["log_every"] == 0 or last:
            progress["log"].append({"step": progress["step"], "loss": sum(losses) / len(losses),
                                    **health_reading(model, probe)})
            losses = []
        if progress["step"] % checkpoint_every == 0 or last:
            progress["seconds"] = time.perf_counter() - started
            _save(path, identity, model, optimizer, progress)
    return _finish(model, splits, label, progress)


@torch.no_grad()
def _finish(model: nn.Module, splits: DatasetSplits, label: str, progress: dict) -> dict:
    """The record of a finished run: its log, test accuracy, health report and θ of a few test images."""
    images, labels = test_images(splits)
    model.eval()
    predictions = torch.cat([model(chunk).argmax(1) for chunk in images.split(500)])
    accuracy = float((predictions == labels).float().mean())
    report = health_check(model, images[:1000])
    model(images[:SHOWN])
    theta = model.transformer.last_theta.float().tolist()
    print(f"  {label}: test accuracy {100 * accuracy:.2f}% after {progress['step']} steps "
          f"({progress['seconds']:.0f} s); verdict: {' | '.join(report.verdicts)}")
    numbers = {key: finite(value) for key, value in vars(report).items() if key != "verdicts"}
    return {"steps": progress["step"], "seconds": round(progress["seconds"], 1), "test_accuracy": accuracy,
            "log": progress["log"], "health": {**numbers, "verdicts": report.verdicts, "text": str(report)},
            "theta_first_test_images": theta}


def train_case(case: str, budget: dict | None = None, checkpoint_every: int = 100) -> dict:
    """Every run of ``case`` at ``budget`` (default :data:`FULL_BUDGET`): the record that
    ``benchmarks/clinic_runs.py`` saves as ``clinic_<case>.json``, less the machine and time."""
    budget = dict(FULL_BUDGET if budget is None else budget)
    print(f"{case}: {CASES[case].title}")
    splits = case_data(case, budget)
    runs = {label: train_run(case, label, splits, budget, checkpoint_every) for label in CASES[case].runs}
    settings = {label: {key: list(value) if isinstance(value, tuple) else value for key, value in run.items()}
                for label, run in CASES[case].runs.items()}
    return {"case": case, "title": CASES[case].title, "dataset": CASES[case].dataset, "batch_size": BATCH,
            "budget": budget, "settings": settings, "runs": runs}


def load_case_records() -> dict[str, dict]:
    """The course's recorded runs of every case (``results/clinic_<case>.json``), by case."""
    records = {}
    for case in CASES:
        path = recorded_results_dir() / f"clinic_{case}.json"
        if not path.exists():
            raise CourseError(f"The clinic's record {path.name} is missing from {path.parent}: train the case "
                              f"with train_case({case!r}) (notebook 08's RETRAIN = True), or run "
                              "python benchmarks/clinic_runs.py in a clone of the course.")
        records[case] = json.loads(path.read_text())
    return records


def transformer_outputs(record: dict, label: str, images: torch.Tensor, mean: Sequence[float],
                        std: Sequence[float]) -> torch.Tensor:
    """What the transformer of run ``label`` of a clinic record made of ``images`` ``(N, C, H, W)``
    in [0, 1] (the case's first test images, N <= 16), from the θ it recorded, with the run's
    mistakes (its ``align_corners`` pair, normalising with ``mean``/``std`` first). Returned in
    [0, 1] for display: a normalised output is mapped back, so the 0 it was padded with shows as
    the mean grey it stands for, not as the black background."""
    settings = record["settings"][label]
    theta = torch.tensor(record["runs"][label]["theta_first_test_images"])[: len(images)]
    grid_corners, sample_corners = settings.get("align_corners", (False, False))
    mean_, std_ = (torch.tensor(v, dtype=images.dtype).view(1, -1, 1, 1) for v in (mean, std))
    normalise = bool(settings.get("normalise_first"))
    x = (images - mean_) / std_ if normalise else images
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=grid_corners)
    output = F.grid_sample(x, grid, align_corners=sample_corners)
    return (output * std_ + mean_ if normalise else output).clamp(0, 1)
