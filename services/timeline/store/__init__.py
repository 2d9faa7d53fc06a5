"""What every slice's store shares: document conversions and duplicate-tolerant inserts."""
