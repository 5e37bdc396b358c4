from civicore.credentials.tests.conftest import signing_dir

__all__ = ["signing_dir"]
