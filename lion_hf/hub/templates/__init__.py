# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Package data: the model card template (``model_card.md``), read with :mod:`importlib.resources`."""
