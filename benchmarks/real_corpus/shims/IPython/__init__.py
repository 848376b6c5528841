"""A stand-in for IPython, for notebooks run as scripts: displaying is not what is compared."""
from . import display  # noqa: F401
