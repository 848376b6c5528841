{% if (cookiecutter | project).fsdp %}
{% include "checkpoint_folders.py" %}
{% endif %}
