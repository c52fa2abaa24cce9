"""Privacy: data-subject erasure and retention."""
