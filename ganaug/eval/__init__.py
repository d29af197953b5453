"""The eval room: does augmentation help? (``ganaug eval``).

One module per job; import from the module (this package imports nothing, so ``import ganaug.eval``
stays cheap and torch-free):

- :mod:`~ganaug.eval.spec` -- :class:`UpliftSpec` (the experiment as asked) and ``UpliftConfig``
- :mod:`~ganaug.eval.uplift` -- the paired uplift experiment (:func:`uplift`, :func:`run_uplift`)
- :mod:`~ganaug.eval.policy` -- :class:`MixPolicy`, the arm type, and the arm's training arrays
- :mod:`~ganaug.eval.arms` -- one seed's generator, synthetic sets, teacher and classifier arms
- :mod:`~ganaug.eval.validation`, :mod:`~ganaug.eval.tune` -- ``--tune``: candidates scored on a
  validation split; the choice, the recommendation and policy files (``augment --policy-file``)
- :mod:`~ganaug.eval.common` -- data helpers (datasets from paths/tuples, per-class draws)
- :mod:`~ganaug.eval.quality`, :mod:`~ganaug.eval.cas` -- FID/KID/PR/memorisation; CAS
- :mod:`~ganaug.eval.classifier_model`, :mod:`~ganaug.eval.classifier_train`,
  :mod:`~ganaug.eval.features` -- the fixed small CNN, its training, the cached feature extractor
- :mod:`~ganaug.eval.onnx_classifier` -- a torch-free reader for ONNX image classifiers
"""
