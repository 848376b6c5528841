{% if cookiecutter._project.model_type == "custom" %}{{ cookiecutter._project.custom_code }}{% endif %}
