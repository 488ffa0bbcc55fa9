"""Messages to customers and salespeople: email, SMS and letters, delivered durably."""
