{% if (cookiecutter | project).model_type == "custom" %}{{ (cookiecutter | project).custom_code }}{% endif %}
