//! Log-file tailing (stub).
