"""Studies: rerun a seed document's experiment from a spec file to a results table and figures."""
