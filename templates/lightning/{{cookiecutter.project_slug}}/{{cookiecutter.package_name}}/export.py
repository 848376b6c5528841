{% if (cookiecutter | project).checkpointing %}
{% include "export.py.j2" %}
{% endif %}
