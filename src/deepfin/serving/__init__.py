"""A read-only REST service over saved run folders."""
