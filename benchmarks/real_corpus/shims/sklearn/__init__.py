"""A few scikit-learn helpers that tutorials use to make toy data (scikit-learn is not installed
here). Same names, shapes and dtypes; the data are this shim's own deterministic draws."""
from . import datasets, model_selection, preprocessing  # noqa: F401
