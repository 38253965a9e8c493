"""Registry of subcommands beyond `measure`; each entry adds one subparser."""
REGISTRY: list = []
