"""sas-router: the SAS call-routing engine."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("sas-router")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "0+unknown"
