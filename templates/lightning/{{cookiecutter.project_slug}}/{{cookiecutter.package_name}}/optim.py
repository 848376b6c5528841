{% include "optim.py.j2" %}
