"""Lead lists in and out: CSV import (normalized, deduplicated, nothing dropped) and export."""
