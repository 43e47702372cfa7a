"""Studies that measure the networks (speed, scaling searches); each module is a runnable entry point."""
