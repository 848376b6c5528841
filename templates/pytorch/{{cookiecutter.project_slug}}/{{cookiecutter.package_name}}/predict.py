{% if cookiecutter._project.checkpointing %}
{% include "predict.py.j2" %}
{% endif %}
