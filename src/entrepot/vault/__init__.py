"""A provider's vault: immutable dataset versions in Parquet, quarantine, local execution."""
