{% include "runs.py" %}
