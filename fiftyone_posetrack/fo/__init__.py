"""FiftyOne glue: datasets, labels and evaluation runs.

Everything that touches a FiftyOne dataset lives in this package; the numerics
it calls live elsewhere and never import FiftyOne.
"""
