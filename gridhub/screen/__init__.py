"""The command centre's screen: a web view of the grid, open cases and KPIs, served by ``gridhub up``."""
