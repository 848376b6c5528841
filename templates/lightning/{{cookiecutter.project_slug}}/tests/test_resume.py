{% include "tests/test_resume.py.j2" %}
