"""Generic helpers with no knowledge of Kubernetes: task supervision, clocks."""
