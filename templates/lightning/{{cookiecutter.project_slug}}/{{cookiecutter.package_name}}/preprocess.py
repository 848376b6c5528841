{% set p = cookiecutter | project %}
{% if p.feature_scaler or p.class_weights %}
{% include "preprocess.py.j2" %}
{% endif %}
