"""stn-course: Spatial Transformer Networks, from a NumPy sampler to trained PyTorch models.

Modules follow the course's ideas: ``utils`` (seeds, device, paths, run mode), ``data``
(MNIST and CIFAR-10 as tensors), ``gtsrb`` (traffic signs with their metadata), ``cache``
(decoded tensors kept on disk), ``loader`` (the batch loader), ``augment`` (tensor
augmentations), ``sampler`` (the NumPy reference grid generator and sampler),
``models`` (spatial transformers and classifiers), ``cifar_models`` (the CIFAR-10
networks), ``registry`` (every classifier by name), ``inspection`` (looking inside a trained
model), ``distortions`` (distorted MNIST), ``train`` (one training loop), ``names`` (the course's
vocabulary: dataset, model, variant and option names, without torch), ``recipes`` (what a run
is: ``RunConfig``), ``experiments`` (doing a run: build, train, load), ``checkpoints`` (a run's
checkpoint and its identity), ``shipped`` (the trained models shipped with the course),
``results`` (a run's results file), ``recording`` (θ recorded while a transformer trains),
``plot`` and ``widgets`` (figures and the θ explorer).
"""
__version__ = "0.1.0"
