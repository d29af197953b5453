"""ganaug's built-in plugins.

This folder installs as the package ``ganaug_plugins`` (not the generic ``plugins``). Each module
here is registered as a plugin (see :data:`ganaug.plugins.BUILTIN_PLUGINS`; ``ganaug_plugins.filters``
is the plugin ``plugins.filters``) and imports from ganaug only :mod:`ganaug.api` (the public hooks
and building blocks), exactly as a third-party plugin would: ``strategies`` (``--strategy``),
``filters`` (``--filter confidence,near-duplicate``), ``albumentations_transforms``
(``--transforms``, ``--synthetic-transforms``) and ``writers`` (``--format imagefolder|npz``).
"""
