{% if (cookiecutter | project).data_source == "synthetic" %}{% include "synthetic.py.j2" %}{% endif %}
