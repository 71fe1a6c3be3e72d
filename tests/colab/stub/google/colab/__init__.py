"""A stand-in for Colab's own ``google.colab`` package (not on PyPI), for the install-cell test.

Only what the notebooks' install cell touches: that the module is imported (how a notebook
knows it is in Colab) and ``userdata.get``, the Colab secrets API."""
