"""API conventions shared by every app: JSON in and out with Decimal money, one error shape, capped pages."""
