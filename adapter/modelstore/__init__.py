"""Speech models on disk: the catalog of known models, their download, unpacking and checks."""

from adapter.modelstore.catalog import Catalog, ModelEntry, ModelFile
from adapter.modelstore.download import fetch
from adapter.modelstore.errors import ModelStoreError
from adapter.modelstore.fileset import install_files
from adapter.modelstore.install import (
    InstalledModel,
    inspect,
    installed_names,
    model_sample_rate,
    unpack,
)

__all__ = ["Catalog", "InstalledModel", "ModelEntry", "ModelFile", "ModelStoreError", "fetch",
           "inspect", "install_files", "installed_names", "model_sample_rate", "unpack"]
