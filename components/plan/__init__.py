"""The offline plan: the Pulumi program run under recording mocks, and its monthly price."""
