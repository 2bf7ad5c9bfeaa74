//! Per-connection sessions: what happens between accept and close.
