"""Call flows: the model, the loader that validates the YAML, and the engine that walks it."""
