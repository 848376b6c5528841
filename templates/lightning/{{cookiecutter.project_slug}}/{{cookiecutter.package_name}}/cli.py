{% include "cli.py.j2" %}
