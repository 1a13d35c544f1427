"""From a frozen version to an adapter: versions, run records, configs, the trainer, behaviour checks, bundles, Ray."""
