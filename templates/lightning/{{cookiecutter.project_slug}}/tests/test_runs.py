{% include "tests/test_runs.py.j2" %}
