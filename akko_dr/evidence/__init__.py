"""Evidence: what a run records (``record``) and how it is written (``plugin``, ``html``)."""
