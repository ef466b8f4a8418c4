"""PDF rendering with reportlab: fonts that draw Chinese, and the documents built from plain data."""
