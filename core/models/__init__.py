"""Base models: the registry, chat templates and token counts, generation."""
