"""Open311 GeoReport v2: the interface 311 apps and city tools speak, over Civicore's problem reports."""
