{% include "metrics.py.j2" %}
