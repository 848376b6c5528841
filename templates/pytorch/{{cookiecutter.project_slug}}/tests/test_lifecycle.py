{% include "tests/test_lifecycle.py.j2" %}
