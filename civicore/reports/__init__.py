"""Report it once: citizens report problems in their city; each goes to the agency that fixes it."""
