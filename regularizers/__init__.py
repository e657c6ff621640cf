"""Built-in regularizer plugins, one file each, registered through the
``wae_bench.regularizers`` entry points exactly as a third-party plugin is."""
