"""Reading users' images: class folders, CSV/JSONL manifests, IDX pairs and NPZ files.

>>> ds = load_dataset("images/", image_size=32)     # doctest: +SKIP
>>> ds.images.shape, ds.classes                     # doctest: +SKIP
((800, 32, 32, 3), ['crack', 'dent', 'ok'])
"""

from ganaug.data.dataset import ImageDataset
from ganaug.data.loader import DataWarning, cache_root, inspect_dataset, load_dataset
from ganaug.data.sources import IMAGE_EXTENSIONS, detect_kind

__all__ = [
    "IMAGE_EXTENSIONS",
    "DataWarning",
    "ImageDataset",
    "cache_root",
    "detect_kind",
    "inspect_dataset",
    "load_dataset",
]
