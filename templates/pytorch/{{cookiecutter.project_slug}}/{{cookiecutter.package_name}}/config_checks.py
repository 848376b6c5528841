{% include "config_checks.py" %}
