//! CRI v1 runtime whose containers are real processes.
