"""One function per command, taking its options and its dependencies (a `Runtime`): no
Click, no printing. The CLI builds options, validates them, calls one action and prints its
result; tests call the same actions with their own runtime (the contract server's
kubeconfig, an injected clock)."""
