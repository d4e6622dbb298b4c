"""A training run: the loop (`train`), what a rerun resumes from (`resume`), the run directory's
rules (`rundir`: one writer, the manifest, refused writes) and its log (`runlog`)."""
