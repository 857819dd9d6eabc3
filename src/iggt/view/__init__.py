"""`iggt serve`: a local web app that runs, shows and queries reconstructions (docs/viewer.md).

It reads export folders through :mod:`iggt.tasks.result`; only a reconstruction started from the
page loads the network, through :func:`iggt.inference.reconstruct.reconstruct`, as the CLI does.
"""
