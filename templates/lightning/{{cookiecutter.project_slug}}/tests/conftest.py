{% include "tests/conftest.py.j2" %}
