"""Tests of nbroutes/headless/: notebooks run without a kernel, and Kernel Gateway notebooks."""
