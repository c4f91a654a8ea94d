"""One module per group of scenarios; each scenario is ``async def (Config) -> Outcome``."""
