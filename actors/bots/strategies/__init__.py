"""Built-in strategies, named in config by ``strategy = "<name>"`` (see ``BUILTIN_STRATEGIES``)."""
