"""ganaug's built-in plugins.

Each module here is registered as a plugin (see :data:`ganaug.plugins.BUILTIN_PLUGINS`) and uses
only the public hooks in :mod:`ganaug.hookspecs` and ganaug's public API, exactly as a third-party
plugin would: ``strategies`` (``--strategy``), ``filters`` (``--filter confidence,near-duplicate``),
``albumentations_transforms`` (``--transforms``, ``--synthetic-transforms``) and ``writers``
(``--format imagefolder|npz``).
"""
