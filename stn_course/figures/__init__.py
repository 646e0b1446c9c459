"""The course's figures, one module per notebook topic.

A figure computes what it shows (a sampled image, where a grid reads, a model's outputs)
with the package's computing modules and draws it with the primitives of
:mod:`stn_course.plot`, which only draw arrays. Which notebook uses which module:

========================================  ======================================================
module                                    notebooks
========================================  ======================================================
:mod:`stn_course.figures.concepts`        00 (a gallery of transforms, the bilinear kernel)
:mod:`stn_course.figures.sampling`        01 (the NumPy transformer: ``transform_image``,
                                          ``zone_plate``, ``gaussian_blur``, align_corners,
                                          bilinear weights, padding, aliasing, homographies);
                                          the θ view of the θ explorer (:mod:`stn_course.widgets`);
                                          the region and grid drawings the other figures share
:mod:`stn_course.figures.training`        02, 03, 04 (learning curves, image rows, a
                                          transformer at work, misread digits, recovered
                                          transforms, θ distributions); shown again in 05-07
:mod:`stn_course.figures.visualising`     05 (aliasing in a trained transformer, Grad-CAM, two
                                          transformers, the animations); the animations in 06
:mod:`stn_course.figures.traffic_signs`   06 (GTSRB's classes, sizes, zoom, per-class errors)
:mod:`stn_course.figures.vision_transformers`  07 (patches, positional similarity, where a ViT
                                          and a spatial transformer look, deformable sampling)
:mod:`stn_course.figures.clinic`          08 (a clinic case: its runs over training, the regions
                                          their θ sample, their outputs; every case's accuracy)
========================================  ======================================================

Saving a figure: :func:`stn_course.files.save_figure`.
"""
