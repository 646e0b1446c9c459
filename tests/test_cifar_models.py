"""The CIFAR-10 networks: the transformer's localisation network is cheap."""

import torch

from stn_course.registry import build_classifier

MEAN, STD = (0.1307,), (0.3081,)


def test_cifar_localisation_costs_under_one_percent_of_the_classifier():
    """The ST-ResNet's localisation network reads a 16x16 copy, so it is cheap beside the ResNet."""
    model = build_classifier("cifar-st-resnet", (3, 32, 32), (0.5,) * 3, (0.25,) * 3).eval()
    multiply_adds = {"localisation": 0, "classifier": 0}

    def count(part: str):
        def hook(module, inputs, output):
            if isinstance(module, torch.nn.Conv2d):
                per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
                multiply_adds[part] += output[0].numel() * per_output
            else:
                multiply_adds[part] += module.in_features * module.out_features
        return hook

    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            module.register_forward_hook(count("localisation" if name.startswith("transformer") else "classifier"))
    model(torch.rand(1, 3, 32, 32))
    assert 0 < multiply_adds["localisation"] < 0.01 * multiply_adds["classifier"]
