"""The Lava backend. Lava is imported only when this backend runs (it is slow to import, and
every process it runs is an OS process)."""
