"""The trading app has no management command of its own (the demo seed runs from risk's seed_demo)."""
