"""The HTTP edge: parse, call one service, render. No rules, no SQL."""
