"""The pure risk engine: frozen dataclasses and functions over Decimal, no Django, no I/O, no clock."""
