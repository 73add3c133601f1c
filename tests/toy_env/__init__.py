"""A toy third environment (a lemonade stand), built by following envs/ADDING_AN_ENVIRONMENT.md.

It lives outside the package on purpose: adding it touches only this folder (and, to run it as a
stage, its entries in a stage table).  ``tests/test_toy_env.py`` registers its kit and runs it
through data collection, structure search, fitting and one planning decision.
"""
from .kit import KIT

__all__ = ["KIT"]
