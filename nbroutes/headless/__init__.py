"""Notebooks without Jupyter: running a notebook's cells in-process to get its ``App``, and Kernel Gateway notebooks.

This is what ``nbroutes serve`` and ``nbroutes.asgi.app("x.ipynb")`` load. It runs the notebook's
``%%route`` cells through the kernel extension, with plain consoles, so it never imports ipywidgets.
"""
