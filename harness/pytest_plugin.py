"""flexlab pytest plugin."""
