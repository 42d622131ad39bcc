"""The ``artwork-matcher`` command line: build the collection, run the stack, identify, evaluate, plan infra."""
