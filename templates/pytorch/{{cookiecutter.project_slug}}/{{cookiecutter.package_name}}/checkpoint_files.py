{% include "checkpoint_files.py" %}
