"""The platform file: models, loader with FILE:LINE:COL errors, cross-field checks, schema."""
