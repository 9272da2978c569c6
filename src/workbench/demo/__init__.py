"""`workbench demo`: a sample repo with a bug and a scripted, offline model."""
