"""Tools for measuring the pipeline, not part of it: evaluation sets the benches and tests build at run time.

Not installed with medaug and imported by no runtime package; bench scripts put the repository
first on sys.path, and pytest does (`pythonpath` in pyproject.toml).
"""
