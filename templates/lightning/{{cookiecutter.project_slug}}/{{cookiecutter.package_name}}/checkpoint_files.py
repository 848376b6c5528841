{% if (cookiecutter | project).checkpointing %}
{% include "checkpoint_files.py" %}
{% endif %}
