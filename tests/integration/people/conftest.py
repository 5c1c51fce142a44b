from tests.integration.people.support import graph_runtime, microsoft, test_ca  # noqa: F401  - fixtures
