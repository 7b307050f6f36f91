"""Helpers shared by tests (importable because pytest.ini puts tests/ on sys.path)."""
