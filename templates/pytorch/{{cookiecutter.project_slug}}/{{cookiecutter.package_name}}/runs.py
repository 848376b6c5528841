{% include "runs.py.j2" %}
