{% include "model.py.j2" %}
