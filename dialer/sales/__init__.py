"""Sales made by telephone: the written confirmation, the withdrawal period, the customer record."""
