import re
import time
import warnings

import pytest
import torch
from torch import nn

from stn_course import train
from stn_course.checkpoints import load_checkpoint
from stn_course.data import ImageTensors
from stn_course.loader import BatchLoader
from stn_course.registry import build_classifier


def _toy_data(count, seed):
    """Bright square top-left for class 0, bottom-right for class 1: learnable in an epoch."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (count,), generator=generator)
    images = torch.randint(0, 40, (count, 1, 16, 16), generator=generator, dtype=torch.uint8)
    for i, label in enumerate(labels.tolist()):
        offset = 2 if label == 0 else 9
        images[i, 0, offset:offset + 5, offset:offset + 5] = 255
    return ImageTensors(images=images, labels=labels, classes=("0", "1"), mean=(0.3,), std=(0.3,), name="toy")


def _setup(seed=0):
    torch.manual_seed(seed)
    model = build_classifier("st-cnn-aff", (1, 16, 16), (0.3,), (0.3,), num_classes=2)
    optimizer = torch.optim.AdamW(train.parameter_groups(model, 1e-3), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[1e-3, 1e-4], epochs=3, steps_per_epoch=4)
    loaders = (BatchLoader(_toy_data(128, 1), 32, shuffle=True, seed=3), BatchLoader(_toy_data(64, 2), 64))
    return model, optimizer, scheduler, loaders


def _fit(model, optimizer, scheduler, loaders, checkpoint, **options):
    return train.fit(model, optimizer, *loaders, epochs=3, scheduler=scheduler, step_scheduler_every_batch=True,
                     checkpoint=checkpoint, log_interval=2, max_grad_norm=5.0, **options)


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    model, optimizer, scheduler, loaders = _setup()
    straight = _fit(model, optimizer, scheduler, loaders, tmp_path / "straight.pt")

    first = _setup()
    partial = _fit(*first, tmp_path / "resumed.pt", stop_after_epoch=1)
    assert partial.epochs == 1
    # A fresh process would rebuild everything from scratch, then resume from the file.
    resumed_model, *rest = _setup(seed=99)
    resumed = _fit(resumed_model, *rest, tmp_path / "resumed.pt")

    assert resumed.epochs == 3
    assert resumed.test_correct == straight.test_correct
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, resumed_model.state_dict()[name]), name
    assert straight.test_accuracy[-1] > 0.9


def test_mixed_precision_on_the_cpu_trains_in_bfloat16_and_keeps_float32_weights(tmp_path):
    model, optimizer, scheduler, loaders = _setup()
    seen = set()
    model.classifier.features[0].register_forward_hook(lambda module, inputs, output: seen.add(output.dtype))
    model.transformer.register_forward_hook(lambda module, inputs, output: seen.add(("transformer", output.dtype)))
    history = _fit(model, optimizer, scheduler, loaders, tmp_path / "amp.pt", amp=True)
    assert torch.bfloat16 in seen, "the classifier's convolutions ran in bfloat16 while training"
    assert ("transformer", torch.bfloat16) not in seen, "the transformer's output stays float32"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert history.test_accuracy[-1] > 0.9


def test_channels_last_changes_the_memory_order_not_the_training():
    plain = _setup()
    plain_history = _fit(*plain, None)
    model, optimizer, scheduler, _ = _setup()
    model = model.to(memory_format=torch.channels_last)
    loaders = (BatchLoader(_toy_data(128, 1), 32, shuffle=True, seed=3, channels_last=True),
               BatchLoader(_toy_data(64, 2), 64, channels_last=True))
    seen = []
    model.classifier.features[0].register_forward_hook(
        lambda module, inputs, output: seen.append(output.is_contiguous(memory_format=torch.channels_last)))
    history = _fit(model, optimizer, scheduler, loaders, None)
    assert seen and all(seen), "the classifier's convolutions ran on channels-last tensors"
    assert history.train_loss == pytest.approx(plain_history.train_loss, rel=1e-4)
    for name, tensor in plain[0].state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor, rtol=1e-4, atol=1e-5)


def test_finished_checkpoint_is_loaded_not_retrained(tmp_path, capsys):
    trained = _setup()
    _fit(*trained, tmp_path / "run.pt")
    capsys.readouterr()
    again = _setup(seed=5)
    history = _fit(*again, tmp_path / "run.pt")
    assert "Train Epoch" not in capsys.readouterr().out
    assert history.epochs == 3
    for name, tensor in trained[0].state_dict().items():
        assert torch.equal(tensor, again[0].state_dict()[name])


def test_checkpoint_loads_with_weights_only(tmp_path):
    setup = _setup()
    _fit(*setup, tmp_path / "run.pt", stop_after_epoch=1)
    state = torch.load(tmp_path / "run.pt", weights_only=True)
    assert state["epoch"] == 1 and set(state) >= {"model", "optimizer", "scheduler", "history"}
    assert not (tmp_path / "run.pt.tmp").exists()


def test_logs_use_the_classic_format(tmp_path, capsys):
    _fit(*_setup(), None)
    out = capsys.readouterr().out
    assert re.search(r"^Train Epoch: 1 \[0/128 \(0%\)\]\tLoss: \d+\.\d{6}$", out, re.M)
    assert re.search(r"^Train Epoch: 1 \[64/128 \(50%\)\]\tLoss: \d+\.\d{6}$", out, re.M)
    assert re.search(r"^Test set: Average loss: \d+\.\d{4}, Accuracy: \d+/64 \(\d+%\)$", out, re.M)
    assert re.search(r"^Epoch 3: \d+\.\d s$", out, re.M)


def test_the_log_is_kept_in_the_history_and_survives_a_resume(tmp_path, capsys):
    _fit(*_setup(), tmp_path / "run.pt", stop_after_epoch=1)
    resumed = _fit(*_setup(seed=7), tmp_path / "run.pt")
    straight = _fit(*_setup(), None)
    printed = capsys.readouterr().out
    def without_times(log):
        return [re.sub(r"\d+\.\d s$", "<time>", line) for line in log]

    assert without_times(resumed.log) == without_times(straight.log)
    assert "\n".join(straight.log) in printed
    assert sum(line.startswith("Test set:") for line in straight.log) == 3


def test_format_matches_the_pytorch_examples():
    assert train.format_train_log(1, 0, 60000, 0, 938, 2.306755) == "Train Epoch: 1 [0/60000 (0%)]\tLoss: 2.306755"
    assert train.format_test_log(0.04123, 9871, 10000) == "Test set: Average loss: 0.0412, Accuracy: 9871/10000 (99%)"


def test_gradient_clipping_bounds_every_step():
    """With clipping, one SGD step moves the parameters by at most lr * max_grad_norm."""
    model, _, _, loaders = _setup()
    with torch.no_grad():
        model.classifier.head[-1].weight.mul_(1e4)  # huge logits: huge gradients
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    train.fit(model, optimizer, loaders[0], loaders[1], epochs=1, max_grad_norm=0.5, stop_after_epoch=1,
              log_interval=100)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm() <= 0.5 * len(loaders[0]) + 1e-4
    assert torch.isfinite(model.transformer.last_theta).all()


def test_diverging_training_stops_with_a_clear_error():
    model, _, _, loaders = _setup()
    with torch.no_grad():
        model.classifier.head[-1].bias.fill_(float("nan"))
    with pytest.raises(train.ThetaDivergedError, match="lower the learning rate"):
        train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), *loaders, epochs=1)


def test_on_step_sees_step_zero_and_every_step():
    model, optimizer, _, loaders = _setup()
    steps = []
    train.fit(model, optimizer, *loaders, epochs=1, on_step=lambda step, m: steps.append(step))
    assert steps == list(range(len(loaders[0]) + 1))


def test_a_blown_up_theta_is_reported_in_the_log():
    model, _, _, loaders = _setup()
    head = model.transformer.localisation[-1]
    with torch.no_grad():
        head.bias.copy_(torch.tensor([1.0, 0.0, 5.0, 0.0, 1.0, 5.0]))  # translated far off the image
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)
    history = train.fit(model, frozen, *loaders, epochs=1)
    assert history.sampled_inside == [0.0]
    assert any(line.startswith("Warning: the spatial transformer samples only 0%") for line in history.log)

    healthy, optimizer, scheduler, loaders = _setup()
    history = _fit(healthy, optimizer, scheduler, loaders, None)
    assert min(history.sampled_inside) > 0.5 and not any("Warning" in line for line in history.log)


def test_a_loaded_run_can_replay_its_log(tmp_path, capsys):
    trained = _fit(*_setup(), tmp_path / "run.pt")
    capsys.readouterr()
    loaded = _fit(*_setup(), tmp_path / "run.pt")
    assert loaded.trained_now == 0
    train.print_log(loaded)
    out = capsys.readouterr().out
    assert out.startswith("Loaded the finished run run.pt")
    assert "\n".join(trained.log) in out


def test_fit_options_and_keywords_give_the_same_run_and_unknown_options_are_refused():
    by_keyword, by_options = _setup(), _setup()
    first = _fit(*by_keyword, None)
    model, optimizer, scheduler, loaders = by_options
    options = train.FitOptions(scheduler=scheduler, step_scheduler_every_batch=True, log_interval=2, max_grad_norm=5.0)
    second = train.fit(model, optimizer, *loaders, 3, options)
    assert second.test_correct == first.test_correct and second.train_loss == first.train_loss
    for name, tensor in by_keyword[0].state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    assert options.seed == 0, "fit does not change the options it is given"
    with pytest.raises(TypeError, match="max_grad"):
        train.fit(model, optimizer, *loaders, 1, max_grad=1.0)


def test_resume_starts_fresh_without_a_checkpoint_and_after_the_last_epoch_with_one(tmp_path, capsys):
    model, optimizer, scheduler, _ = _setup()
    history, start = train.resume(model, optimizer, train.FitOptions(checkpoint=tmp_path / "none.pt"), epochs=3)
    assert (history, start) == (train.History(), 1)
    trained = _setup()
    _fit(*trained, tmp_path / "run.pt", stop_after_epoch=2)
    options = train.FitOptions(scheduler=scheduler, checkpoint=tmp_path / "run.pt")
    history, start = train.resume(model, optimizer, options, epochs=3)
    assert start == 3 and history.epochs == 2 and history.trained_now == 0
    assert capsys.readouterr().out.endswith("Resuming from run.pt: epoch 2 of 3 done.\n")
    for name, tensor in trained[0].state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    assert scheduler.state_dict() == trained[2].state_dict()
    assert train.resume(model, optimizer, train.FitOptions(checkpoint=tmp_path / "run.pt", resume=False),
                        epochs=3)[1] == 1


def test_one_epoch_steps_once_per_batch_and_logs_every_log_interval_batches():
    model, optimizer, _, (loader, _) = _setup()
    steps, history = [], train.History()
    options = train.FitOptions(log_interval=3, on_step=lambda step, m: steps.append(step), progress=False)
    before = [p.detach().clone() for p in model.parameters()]
    loss, step = train.train_one_epoch(model, optimizer, loader, 1, 1, 10, options,
                                       train.Precision.for_device(torch.device("cpu"), None), history)
    assert step == 10 + len(loader) and steps == list(range(11, 11 + len(loader)))
    assert [line.split("\t")[0] for line in history.log] == ["Train Epoch: 1 [0/128 (0%)]", "Train Epoch: 1 [96/128 (75%)]"]
    assert 0 < loss < 1 and model.training
    assert all(not torch.equal(old, new) for old, new in zip(before, model.parameters()) if new.grad is not None)
    with pytest.raises(train.ThetaDivergedError, match="epoch 2, batch 5"):
        train.check_finite(float("inf"), 2, 5)


def test_the_default_log_interval_prints_a_few_lines_an_epoch():
    assert train.default_log_interval(469) == 100, "MNIST, batches of 128: lines at 0, 100, ..., 400"
    assert [train.default_log_interval(n) for n in (1, 4, 5, 6, 11, 98, 782, 2000)] == [1, 1, 1, 2, 5, 20, 200, 500]
    for batches in range(1, 5000):
        lines = len(range(0, batches, train.default_log_interval(batches)))
        assert min(batches, 2) <= lines <= 5, (batches, lines)
    model, optimizer, _, (loader, _) = _setup()
    history = train.History()
    train.train_one_epoch(model, optimizer, loader, 1, 1, 0, train.FitOptions(progress=False),
                          train.Precision.for_device(torch.device("cpu"), None), history)
    assert len(history.log) == len(range(0, len(loader), train.default_log_interval(len(loader)))) > 1


def test_end_of_epoch_tests_logs_records_and_checkpoints(tmp_path, capsys):
    model, optimizer, _, (_, test_loader) = _setup()
    history = train.History(train_loss=[0.9], test_loss=[0.8], test_accuracy=[0.5], test_correct=[32],
                            seconds=[1.0], lr=[1e-3])
    options = train.FitOptions(checkpoint=tmp_path / "run.pt")
    train.end_epoch(model, optimizer, test_loader, 2, 0.7, time.perf_counter(), options, history)
    loss, correct, total = train.evaluate(model, test_loader)
    assert history.train_loss == [0.9, 0.7] and history.test_loss[-1] == pytest.approx(loss)
    assert history.test_correct == [32, correct] and history.lr == [1e-3, optimizer.param_groups[0]["lr"]] and history.trained_now == 1
    assert history.log[1] == train.format_test_log(loss, correct, total) and history.log[2].startswith("Epoch 2: ")
    assert capsys.readouterr().out == "\n".join(history.log) + "\n"
    state = load_checkpoint(tmp_path / "run.pt")
    assert state["epoch"] == 2 and state["history"] == history.as_dict() and state["scheduler"] is None


@pytest.mark.parametrize("options", [{"max_grad_norm": -1.0}, {"max_grad_norm": 0.0},
                                     {"max_grad_norm": float("nan")}, {"label_smoothing": -0.5},
                                     {"log_interval": 0}])
def test_fit_refuses_settings_that_would_train_silently_wrong(options):
    model, optimizer, scheduler, loaders = _setup()
    with pytest.raises(ValueError, match=next(iter(options))):
        train.fit(model, optimizer, *loaders, epochs=1, **options)


def test_a_diverging_run_is_a_known_error():
    from stn_course.errors import CourseError

    assert issubclass(train.ThetaDivergedError, CourseError)


def test_the_training_loop_imports_nothing_from_inspection_or_recording():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(train))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "checkpoints" in imported and not imported & {"inspection", "recording", "experiments", "recipes"}


def test_evaluate_refuses_an_empty_test_set():
    from stn_course.train import evaluate

    empty = ImageTensors(torch.zeros(0, 1, 4, 4, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64),
                         ("0",), (0.5,), (0.5,), "empty")
    with pytest.raises(ValueError, match="empty test set"):
        evaluate(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1)), BatchLoader(empty, 4))


class _RecordingLoader(BatchLoader):
    """A BatchLoader that remembers the order of labels it yielded in each epoch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.orders: list[tuple[int, list[int]]] = []

    def __iter__(self):
        seen = []
        for images, labels in super().__iter__():
            seen.extend(labels.tolist())
            yield images, labels
        self.orders.append((self.epoch, seen))


def test_every_epoch_draws_a_new_shuffle():
    count = 64
    data = ImageTensors(images=torch.zeros(count, 1, 4, 4, dtype=torch.uint8), labels=torch.arange(count) % 10,
                        classes=tuple(str(i) for i in range(10)), mean=(0.5,), std=(0.5,), name="toy")
    train_loader = _RecordingLoader(data, 16, shuffle=True, seed=0)
    test_loader = BatchLoader(data, 64)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    train.fit(model, optimizer, train_loader, test_loader, epochs=3, progress=False, log_interval=1000)
    epochs = [epoch for epoch, _ in train_loader.orders]
    assert epochs == [1, 2, 3], f"the training loop must call set_epoch(epoch): saw epochs {epochs}"
    orders = [order for _, order in train_loader.orders]
    assert orders[0] != orders[1] != orders[2]


def test_a_loss_scalers_state_round_trips_through_a_checkpoint(tmp_path):
    # On a GPU, float16 training scales the loss; a resumed run must go on with the scale it had.
    # A CPU scaler (it scales too when enabled) stands in for the CUDA one here.
    model, optimizer, _, (_, test_loader) = _setup()
    scaler = torch.amp.GradScaler("cpu")
    scaler.load_state_dict({"scale": 256.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 100,
                            "_growth_tracker": 7})
    options = train.FitOptions(checkpoint=tmp_path / "run.pt")
    train.end_epoch(model, optimizer, test_loader, 1, 0.7, time.perf_counter(), options, train.History(),
                    train.Precision("cpu", True, scaler))
    fresh = train.Precision("cpu", True, torch.amp.GradScaler("cpu"))
    assert fresh.scaler.state_dict() != scaler.state_dict()
    train.resume(model, optimizer, options, epochs=2, precision=fresh)
    assert fresh.scaler.state_dict() == scaler.state_dict()
    # a run without loss scaling (every CPU run) stores none
    train.end_epoch(model, optimizer, test_loader, 2, 0.7, time.perf_counter(), options, train.History(),
                    train.Precision.for_device(torch.device("cpu"), True))
    assert "scaler" not in load_checkpoint(tmp_path / "run.pt")


def test_testing_runs_under_trainings_autocast_on_a_gpu_only():
    cpu, ones = train.Precision.for_device(torch.device("cpu"), True), torch.ones(2, 2)
    with cpu.autocast():
        assert (ones @ ones).dtype == torch.bfloat16
    with cpu.evaluation():  # CPU runs were recorded testing in float32
        assert (ones @ ones).dtype == torch.float32
    cuda = train.Precision("cuda", True, torch.amp.GradScaler("cuda", enabled=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # without CUDA, torch says it disables the autocast
        evaluation = cuda.evaluation()
    assert isinstance(evaluation, torch.autocast) and evaluation.fast_dtype == torch.float16


def test_each_epoch_records_what_it_computed_in_and_a_resume_says_when_that_changes(tmp_path, capsys):
    model, optimizer, _, loaders = _setup()
    history = train.fit(model, optimizer, *loaders, epochs=2, checkpoint=tmp_path / "run.pt", stop_after_epoch=1)
    assert history.precision == ["float32"]
    history = train.fit(*_setup()[:2], *loaders, epochs=2, checkpoint=tmp_path / "run.pt", amp=True)
    assert history.precision == ["float32", "bfloat16 autocast"]
    assert "Note: it trained in float32; here it goes on in bfloat16 autocast." in capsys.readouterr().out
    assert train.Precision("cuda", True, torch.amp.GradScaler("cuda", enabled=False)).name == "float16 autocast"


def test_label_smoothing_changes_the_training_loss_as_its_formula_says():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(256, 2))
    data = _toy_data(48, 4)
    loader = BatchLoader(data, 16)
    images, labels = data.images.float() / 255, data.labels
    with torch.no_grad():
        log_p = model(images).log_softmax(dim=1)
    smoothing = 0.3
    # (1 - ε) · cross-entropy with the label + ε · mean over classes of cross-entropy with each class
    expected = ((1 - smoothing) * -log_p[torch.arange(len(labels)), labels] + smoothing * -log_p.mean(dim=1)).mean()
    plain = -log_p[torch.arange(len(labels)), labels].mean()
    assert abs(expected - plain) > 0.01
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)  # the model stays as it is: the loss is the formula's
    history = train.fit(model, frozen, loader, loader, epochs=1, label_smoothing=smoothing, progress=False)
    assert history.train_loss[0] == pytest.approx(expected.item(), rel=1e-5)


def test_the_localisation_network_learns_in_its_own_group_at_the_lower_rate():
    from stn_course.models import SpatialTransformer

    torch.manual_seed(0)
    model = build_classifier("st-cnn-aff", (1, 16, 16), (0.3,), (0.3,), num_classes=2)
    localisation = {id(p) for m in model.modules() if isinstance(m, SpatialTransformer)
                    for p in m.localisation.parameters()}
    groups = train.parameter_groups(model, lr=0.1, localisation_lr_scale=0.25)
    grouped = [id(p) for group in groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters()), "every parameter in exactly one group"
    by_name = {group["name"]: group for group in groups}
    assert {id(p) for p in by_name["localisation"]["params"]} == localisation and localisation
    assert by_name["localisation"]["lr"] == pytest.approx(0.025) and by_name["classifier"]["lr"] == 0.1
    optimizer = torch.optim.SGD(groups, lr=0.1)
    images, labels = next(iter(BatchLoader(_toy_data(32, 5), 32)))
    nn.functional.cross_entropy(model(images), labels).backward()
    before = {id(p): (p.detach().clone(), p.grad.clone()) for p in model.parameters()}
    optimizer.step()
    moved = 0
    for parameter in model.parameters():
        old, grad = before[id(parameter)]
        rate = 0.025 if id(parameter) in localisation else 0.1
        assert torch.allclose(parameter.detach(), old - rate * grad, atol=1e-7)
        moved += id(parameter) in localisation and not torch.equal(parameter.detach(), old)
    assert moved > 0, "the localisation network's parameters change after a step"


@pytest.mark.parametrize("damage", ["renamed key", "reshaped key", "no optimizer", "epoch 1.5", "no history"])
def test_a_checkpoint_from_other_code_is_one_error_naming_it(tmp_path, damage):
    from stn_course.checkpoints import IncompatibleCheckpointError

    checkpoint = tmp_path / "run.pt"
    _fit(*_setup(), checkpoint, stop_after_epoch=1, progress=False)
    state = torch.load(checkpoint, weights_only=True)
    model = state["model"]
    if damage == "renamed key":
        key = next(iter(model))
        model["renamed." + key] = model.pop(key)
    elif damage == "reshaped key":
        key = next(key for key, value in model.items() if value.dim() == 2)
        model[key] = torch.zeros(model[key].shape[0] + 1, model[key].shape[1])
    elif damage == "no optimizer":
        del state["optimizer"]
    elif damage == "epoch 1.5":
        state["epoch"] = 1.5
    else:
        del state["history"]
    torch.save(state, checkpoint)
    with pytest.raises(IncompatibleCheckpointError, match=f"The checkpoint {checkpoint} .*Delete it .*--restart"):
        _fit(*_setup(), checkpoint, progress=False)

