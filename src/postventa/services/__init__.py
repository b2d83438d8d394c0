"""Use cases, one function each. They run inside a transaction they are given and never commit."""
