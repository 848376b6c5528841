"""Settings shared by every test folder."""

import os

from hypothesis import settings

# CI must be reproducible: the same drawn examples on every run. HYPOTHESIS_PROFILE=explore
# draws fresh ones (run it when changing the spec schema, the generator or the converter).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
