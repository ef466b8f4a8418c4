"""Schema-driven customer-management panel for chemical-products companies."""
