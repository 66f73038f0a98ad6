"""The core: ``App.dispatch(Request) -> Response``, in pure Python plus pydantic.

Patterns and routing, requests and responses, handlers and their validation, middleware,
streaming and the OpenAPI document. Nothing here imports Tornado, IPython or ipywidgets:
every server in ``nbroutes.servers`` translates to and from these types, so each behaves the same.
"""
