{% include "config.py.j2" %}
