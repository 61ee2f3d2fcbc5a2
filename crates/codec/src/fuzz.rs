//! Bodies of the fuzz targets, shared by `fuzz/` and the corpus replay test.
