{% include "data.py.j2" %}
