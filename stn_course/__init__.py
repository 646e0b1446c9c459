"""stn-course: Spatial Transformer Networks, from a NumPy sampler to trained PyTorch models.

Modules follow the course's ideas: ``utils`` (seeds, device, paths, run mode), ``data``
(MNIST and CIFAR-10 as tensors), ``gtsrb`` (traffic signs with their metadata), ``cache``
(decoded tensors kept on disk), ``loader`` (the batch loader), ``augment`` (tensor
augmentations), ``sampler`` (the NumPy reference grid generator and sampler),
``models`` (spatial transformers and classifiers), ``cifar_models`` (the CIFAR-10
networks), ``registry`` (every classifier by name), ``inspection`` (looking inside a trained
model), ``distortions`` (distorted MNIST), ``train`` (one training loop), ``experiments`` (named runs, results files, the command
line's work), ``plot`` and ``widgets`` (figures and the θ explorer).
"""
__version__ = "0.1.0"
