"""Civicore: public e-services, back office, signed results and audit on one platform."""
