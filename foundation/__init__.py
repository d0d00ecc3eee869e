"""The foundation every part of gridhub stands on: settings, logging, errors, run files, packaged data.

It imports nothing of gridhub's own, so any layer above (contracts, stages, applications) may use it.
"""
