"""Where records enter: one module per source family, all publishing through :mod:`connectors.base`."""
