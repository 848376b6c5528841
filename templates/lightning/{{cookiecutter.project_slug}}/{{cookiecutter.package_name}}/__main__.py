{% include "main.py.j2" %}
