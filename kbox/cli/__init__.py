"""The ``kbox`` command line (click)."""
