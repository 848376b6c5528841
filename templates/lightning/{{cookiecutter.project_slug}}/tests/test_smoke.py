{% include "tests/test_smoke.py.j2" %}
