"""Storage: the backend protocol (``base``) and the SQLite backend (``sqlite``)."""
