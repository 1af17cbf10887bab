"""Adaptive training of the similarity models, one module per step, in data-flow order.

- :mod:`~aeroloc.training.dataset`: the dataset on disk (manifest, stored samples, loading);
- :mod:`~aeroloc.training.build`: building it from archives, as ``locate`` prepares photos;
- :mod:`~aeroloc.training.splits`: train/validation/test by flight line;
- :mod:`~aeroloc.training.sampling`: window grids, crops, augmentation, :class:`TripletDataset`;
- :mod:`~aeroloc.training.scoring`: heatmaps of stored samples scored against the truth;
- :mod:`~aeroloc.training.mining`: hard negatives (one picker for both batch sources);
- :mod:`~aeroloc.training.features`: dense-engine features (DenseScorer, FeatureBank);
- :mod:`~aeroloc.training.evaluate`: mean confidence level and recall@k on stored samples;
- :mod:`~aeroloc.training.config`: :class:`TrainConfig` and the presets of the model registry;
- :mod:`~aeroloc.training.sources`: the two batch sources (image triplets, feature bank);
- :mod:`~aeroloc.training.outputs`: checkpoints, history and loss curve of a run;
- :mod:`~aeroloc.training.loop`: :func:`~aeroloc.training.loop.train`;
- :mod:`~aeroloc.training.commands`: the bodies of ``aeroloc triplets`` and ``aeroloc train``.

:func:`~aeroloc.training.loop.train` fine-tunes a registry model on a dataset
written by :func:`~aeroloc.training.build.build_dataset`:

1. split the photos about 8:1:1 by flight line, so no photo and no line is in two parts;
2. each epoch, cut fresh triplets (anchor photo, jittered true window, random,
   blank and — from ``hard_start_epoch`` on — hard negatives that the current
   model ranks highest) and minimise the model's own loss (triplet or
   contrastive) over every (anchor, positive, negative) combination, or the
   rank loss over whole heatmaps;
3. validate with the seed thesis's measure: the *mean confidence level* of the
   true window among all windows of the validation AoIs (heatmaps at a
   quarter-window stride, as ``locate`` computes them), plus recall@1/@5;
4. keep the best epoch (early stopping), write it with
   :func:`~aeroloc.models.save_checkpoint` (model, config, preprocessing,
   input size, data hash), a ``.last.pt`` checkpoint to resume from, the
   history as JSON and a loss-curve PNG.
"""
