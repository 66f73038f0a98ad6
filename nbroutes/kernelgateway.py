"""Kernel Gateway `notebook-http` notebooks served by nbroutes: the public name of `nbroutes.headless.kernelgateway`."""

from nbroutes.errors import KernelGatewayNotebookError, StartupCellError
from nbroutes.headless.kernelgateway import (
    SWAGGER_PATH,
    build_app,
    is_kernel_gateway_notebook,
    request_json,
    swagger_document,
)

__all__ = [
    "KernelGatewayNotebookError",
    "StartupCellError",
    "SWAGGER_PATH",
    "build_app",
    "is_kernel_gateway_notebook",
    "request_json",
    "swagger_document",
]
