//! Executors, CPU placement, signals and process lifecycle.
