{% include "optim.py" %}
