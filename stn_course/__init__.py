"""stn-course: Spatial Transformer Networks, from a NumPy sampler to trained PyTorch models.

Modules follow the course's ideas: ``utils`` (seeds, device, paths, run mode), ``files``
(atomic writes, saved figures), ``course_files`` (the course's results, figures and recordings
without the repository, on Colab), ``data`` (MNIST and CIFAR-10 as tensors), ``gtsrb`` (traffic
signs with their metadata), ``gtsrb_jitter`` (its test set turned, zoomed and shifted), ``cache`` (decoded tensors kept on disk), ``loader`` (the batch
loader), ``augment`` (tensor augmentations), ``sampler`` (the NumPy reference grid generator
and sampler), ``conventions`` (what it shares with the torch code), ``array_checks`` (its
argument checks), ``coordinates`` (where a grid reads, for pictures), ``parameterisation`` (θ
from readable parameters and back), ``geometry`` (the torch grid generators), ``models``
(spatial transformers and classifiers), ``cifar_models`` (the CIFAR-10 networks),
``traffic_sign_models`` and ``traffic_signs`` (GTSRB), ``vision_transformer`` (ViT and
ST-ViT), ``registry`` (every classifier by name), ``clinic`` (a transformer with the usual mistakes, and
the clinic's cases), ``inspection`` (looking inside a trained
model), ``health`` (diagnosing a transformer from θ), ``analysis`` (what a model gets wrong), ``distortions`` (distorted MNIST), ``train``
(one training loop), ``names`` (the course's vocabulary: dataset, model, variant and option
names, without torch), ``recipes`` and ``validation`` (what a run is: ``RunConfig``),
``experiments`` (doing a run: build, train, load), ``checkpoints`` (a run's checkpoint and
its identity), ``shipped`` (the trained models shipped with the course), ``results`` (a run's
results file), ``recording`` (θ recorded while a transformer trains), ``runlock`` and
``errors``, ``published`` (the published results), ``gtsrb_results`` (GTSRB's selection, seeds and jitter sets read
back), ``records`` (results records read
back and checked) and ``report`` (the tables), ``plot``
(drawing primitives), the ``figures`` package (each notebook's
figures: ``figures.concepts``, ``figures.sampling``, ``figures.training``, ``figures.visualising``,
``figures.traffic_signs``, ``figures.vision_transformers``, ``figures.clinic``) and ``widgets``
(the θ explorer).
"""
__version__ = "0.1.0"
