"""The scheduler: binds pending pods to nodes (``scheduler.Scheduler``), with upstream's filters
(``filters``) and scores (``scores``)."""
