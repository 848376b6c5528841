"""An empty torchtext: helper modules import it at the top without using it on our paths."""
from . import vocab  # noqa: F401

__version__ = "0.0+real-corpus-shim"
