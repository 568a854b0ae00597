"""Reports written to disk: Markdown and PNG charts (matplotlib, optional extra `report`)."""
