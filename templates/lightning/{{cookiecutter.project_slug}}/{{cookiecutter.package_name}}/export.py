{% if cookiecutter._project.checkpointing %}
{% include "export.py.j2" %}
{% endif %}
