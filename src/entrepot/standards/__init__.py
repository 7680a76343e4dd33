"""The common standard: Table Schema files with column roles, code lists, mappings, validation."""
