"""Inside a Jupyter kernel: the extension, the magics, the cell forms and the widgets.

``%load_ext nbroutes`` calls ``extension.load``: one ``App`` and one Tornado server per kernel,
routes owned by cells, and output under each route's cell. What a route cell shows comes from
the kernel state's console factory (``consoles.py``): route cards in Jupyter, plain consoles
when the headless runner runs the cells. The widgets (route cards, the request widget, the data
browser) are imported only when a kernel shows them, so a notebook run headless never loads ipywidgets.
"""

from nbroutes.kernel.extension import state

__all__ = ["state"]
