{% if (cookiecutter | project).data_source != "synthetic" %}
{% include "sources.py.j2" %}
{% endif %}
