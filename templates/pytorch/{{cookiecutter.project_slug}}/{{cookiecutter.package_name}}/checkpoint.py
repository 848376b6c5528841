{% include "checkpoint.py.j2" %}
