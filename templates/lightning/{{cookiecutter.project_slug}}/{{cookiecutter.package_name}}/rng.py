{% include "rng.py.j2" %}
