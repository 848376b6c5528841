{% if (cookiecutter | project).checkpointing %}
{% include "predict.py.j2" %}
{% endif %}
