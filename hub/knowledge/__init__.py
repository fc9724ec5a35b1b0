"""Knowledge base: FAQ matching for customer-service replies."""
