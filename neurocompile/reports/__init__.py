"""What a run, a sweep and a placement look like to a person: JSON, tables and PNG plots."""
