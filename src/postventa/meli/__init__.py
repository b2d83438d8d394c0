"""The Mercado Libre API client: typed calls, errors classified, no knowledge of the database."""
