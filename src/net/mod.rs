//! Socket plumbing: listeners, connects, splice and copy tunnels.
