{% include "run_folder.py.j2" %}
