"""Provider adapters: pure functions from a vendor's raw webhook to npsloop's responses.

Each module follows the vendor's documented payload and signature scheme; the docstring at
its top names what it follows.
"""
