"""Store tests, directly on assistant_kit.store.Store."""
