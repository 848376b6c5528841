{% if cookiecutter._project.checkpointing %}
{% include "checkpoint.py.j2" %}
{% endif %}
