"""A stand-in for IPython, for notebooks run as scripts: displaying is not what is compared."""
from . import display  # noqa: F401

version_info = (8, 0, 0)  # matplotlib reads it when IPython is imported


def get_ipython():
    """None: not inside IPython (matplotlib asks when IPython is imported)."""
    return None
