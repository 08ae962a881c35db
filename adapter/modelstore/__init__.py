"""Speech models on disk: the catalog of known models, their download, unpacking and checks."""

from adapter.modelstore.catalog import Catalog, ModelEntry
from adapter.modelstore.download import fetch
from adapter.modelstore.errors import ModelStoreError
from adapter.modelstore.install import InstalledModel, inspect, installed_names, model_sample_rate, unpack

__all__ = ["Catalog", "InstalledModel", "ModelEntry", "ModelStoreError", "fetch", "inspect",
           "installed_names", "model_sample_rate", "unpack"]
