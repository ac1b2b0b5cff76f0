"""Tables, the engine and migrations."""
