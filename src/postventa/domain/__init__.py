"""Pure rules of post-sale messaging: no I/O, no frameworks, the standard library only."""
