"""Where records enter: one module per source family.

Each connector runs on the lifecycle of :mod:`connectors.base` and publishes through :mod:`connectors.publisher`.
"""
