{% if cookiecutter._project.checkpointing %}
{% include "checkpoint_files.py" %}
{% endif %}
