{% if (cookiecutter | project).checkpointing %}
{% include "tests/test_inference.py.j2" %}
{% endif %}
