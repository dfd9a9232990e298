"""Test-suite configuration: markers that pyproject.toml does not list."""


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: the full loader fuzz suite (minutes; BOXSUP_FUZZ_FULL=1, `make fuzz`)")
