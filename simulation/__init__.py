"""A simulated day of Menghe town: an application built on gridhub, not part of the product.

It generates what the town's systems would send in one day (incident reports, case updates,
patrol tracks, approval applications, department registers, faults included), drives a hub
through its public doors (``gridhub demo``) and checks that the warehouse holds exactly what
the day must produce. The integration tests use the same day.
"""
