{% if (cookiecutter | project).checkpointing %}
{% include "checkpoint.py.j2" %}
{% endif %}
