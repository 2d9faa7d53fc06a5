"""Per-customer data keys, sealed interactions at the store boundary, and erasure by shredding."""
