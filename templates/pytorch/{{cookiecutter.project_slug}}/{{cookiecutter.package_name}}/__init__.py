{% set p = cookiecutter | project %}
"""The training project described in README.md (PROJECT_NAME below)."""

PROJECT_NAME = {{ p.project_name|pyrepr }}
DESCRIPTION = {{ p.description|pyrepr }}
__version__ = "0.1.0"
