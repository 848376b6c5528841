{% set p = cookiecutter._project %}
"""The {{ p.project_slug }} training project; see README.md."""

PROJECT_NAME = {{ p.project_name|pyrepr }}
DESCRIPTION = {{ p.description|pyrepr }}
__version__ = "0.1.0"
