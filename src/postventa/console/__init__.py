"""The operator console (issue 19): server-rendered pages for the people who answer buyers, beside
the API and calling the same services. It imports nothing of `postventa.api` (import-linter)."""
