"""Built-in tools' execution layers; ``sandbox`` runs the ``code_interpreter``'s Python in Jupyter kernels."""
