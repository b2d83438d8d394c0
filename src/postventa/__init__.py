"""postventa: post-sale messaging for Mercado Libre orders behind the Alephee API v2 contract."""

__version__ = "0.1.0"
