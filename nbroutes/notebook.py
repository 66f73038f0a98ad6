"""A notebook's routes without Jupyter: the public name of ``nbroutes.headless.runner``."""

from nbroutes.errors import NotebookError
from nbroutes.headless.runner import NotebookRun, load_notebook, run_notebook, run_notebook_async

__all__ = ["NotebookError", "NotebookRun", "load_notebook", "run_notebook", "run_notebook_async"]
