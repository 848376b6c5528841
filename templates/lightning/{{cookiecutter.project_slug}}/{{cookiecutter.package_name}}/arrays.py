{% if (cookiecutter | project).data_source in ("synthetic", "npz", "npy") %}
{% include "arrays.py" %}
{% endif %}
